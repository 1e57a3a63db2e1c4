//! Sizes in bytes as people write them (`100MiB`, `2G`, `536870912`) and as the tool prints them.

/// Bytes from a number with an optional unit: none or `B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`,
/// `T`/`TiB` (powers of 1024, as etcd's own docs mean them), or `KB`, `MB`, `GB`, `TB` (powers of
/// 1000). None for anything else, or a size past u64.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "Ki" | "KiB" => 1 << 10,
        "M" | "Mi" | "MiB" => 1 << 20,
        "G" | "Gi" | "GiB" => 1 << 30,
        "T" | "Ti" | "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A whole number as etcd's flag package reads an int64 flag (Go's `strconv.ParseInt(s, 0, 64)`):
/// an optional sign, then decimal, `0x` hex, `0o` or leading-`0` octal, or `0b` binary, with `_`
/// only between digits. No units, no spaces: etcd refuses `8GiB`.
pub fn go_int64(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.trim_start_matches('_').to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.trim_start_matches('_').to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.trim_start_matches('_').to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].trim_start_matches('_').to_string())
    } else {
        (10, lower.clone())
    };
    if digits.is_empty()
        || digits.ends_with('_')
        || digits.contains("__")
        || digits.starts_with('_')
    {
        return None;
    }
    let v = u64::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    if neg {
        (v <= 1 << 63).then(|| (v as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(v).ok()
    }
}

/// `1.5 MiB`, `512 B`: one decimal, binary units.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64_flags_read_as_etcd_reads_them() {
        for (text, want) in [
            ("16777216", Some(16777216)),
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("+8", Some(8)),
            ("0x100", Some(256)),
            ("0o17", Some(15)),
            ("017", Some(15)),
            ("0b101", Some(5)),
            ("1_000_000", Some(1_000_000)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("8GiB", None),
            ("8G", None),
            (" 8", None),
            ("", None),
            ("_1", None),
            ("1__0", None),
            ("08", None),
        ] {
            assert_eq!(go_int64(text), want, "{text:?}");
        }
    }

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(parse_bytes("100MiB"), Some(100 << 20));
        assert_eq!(parse_bytes("2G"), Some(2 << 30));
        assert_eq!(parse_bytes("8589934592"), Some(8 << 30));
        assert_eq!(parse_bytes("1 GB"), Some(1_000_000_000));
        assert_eq!(parse_bytes("0"), Some(0));
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5G",
            "12 parsecs",
            "99999999999999999999",
        ] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        assert_eq!(parse_bytes("18446744073709551615T"), None);
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(64 << 20), "64.0 MiB");
        assert_eq!(format_bytes(2 << 30), "2.0 GiB");
    }
}
