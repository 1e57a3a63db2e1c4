//! What a stand-in member answers of its maintenance: alarms, compaction, and a defragmentation
//! that takes `defrag_time` and blocks that member meanwhile, each one recorded with its times.

use super::answer::lock;
use super::State;
use crate::util::testserver::Response;
use serde_json::{json, Value};
use std::sync::{Mutex, MutexGuard};

fn ok(v: Value) -> Response {
    Response::json(200, &v)
}

/// `GET` the raised alarms, or `DEACTIVATE` one (etcd answers with what it disarmed).
pub(super) fn alarm(s: &mut State, body: &Value, header: Value) -> Response {
    let list = |a: &[(u64, String)]| -> Vec<Value> {
        a.iter()
            .map(|(id, n)| json!({"memberID": id.to_string(), "alarm": n}))
            .collect()
    };
    match body["action"].as_str().unwrap_or("GET") {
        "DEACTIVATE" => {
            let id: u64 = body["memberID"]
                .as_str()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
            let name = body["alarm"].as_str().unwrap_or("").to_string();
            let gone: Vec<(u64, String)> = s
                .alarms
                .iter()
                .filter(|(i, n)| *i == id && *n == name)
                .cloned()
                .collect();
            s.alarms.retain(|a| !gone.contains(a));
            ok(json!({"header": header, "alarms": list(&gone)}))
        }
        _ => ok(json!({"header": header, "alarms": list(&s.alarms)})),
    }
}

/// Physical compaction to `revision`: the space is free to reuse (in use halves on every member).
pub(super) fn compact(s: &mut State, body: &Value, header: Value) -> Response {
    let to: u64 = body["revision"]
        .as_str()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    if to <= s.compacted {
        return Response::json(
            400,
            &json!({"message": "etcdserver: mvcc: required revision has been compacted"}),
        );
    }
    s.compacted = to;
    for m in &mut s.members {
        m.db_in_use /= 2;
    }
    ok(json!({"header": header}))
}

/// Member `i` rewrites its backend: it answers nothing else for `defrag_time`, then its file is
/// the size of what is in use.
pub(super) fn defragment(state: &Mutex<State>, mut s: MutexGuard<'_, State>, i: usize) -> Response {
    s.defragmenting.push(i);
    let (took, start) = (s.defrag_time, s.clock());
    drop(s);
    std::thread::sleep(took);
    let mut s = lock(state);
    let end = s.clock();
    s.defragmenting.retain(|k| *k != i);
    s.defrags.push((i, start, end));
    if let Some((n, k)) = s.silent_after_defrags {
        if s.defrags.len() == n {
            s.silent.push(k);
        }
    }
    let m = &mut s.members[i];
    m.db_size = m.db_in_use;
    ok(json!({"header": {"member_id": m.id.to_string()}}))
}
