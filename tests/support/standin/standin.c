/* A stand-in etcd release for the tests, one program under three names (etcd, etcdctl, etcdutl),
 * for versions no real build of reaches this machine (3.5.2x-3.5.3x, 3.6, 3.7). It answers
 * `--version` and `--help` as that etcd does (the help text rendered from etcd's own help.go of
 * that version, see extract_help.py), and as `etcd` with flags it runs a one-member stand-in
 * server (member.py, embedded) that answers etcd's v3 JSON API as that version would.
 * `etcdutl check v2store` answers as 3.5.18 and later do: custom data or none.
 * Built by build.sh with STANDIN_VERSION and the generated standin_text.h. */
#include <dirent.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "standin_text.h" /* HELP_TEXT, MEMBER_PY */

static int minor_of(const char *v) {
    const char *dot = strchr(v, '.');
    return dot ? atoi(dot + 1) : 0;
}

static int patch_of(const char *v) {
    const char *dot = strchr(v, '.');
    dot = dot ? strchr(dot + 1, '.') : NULL;
    return dot ? atoi(dot + 1) : 0;
}

/* 1 when a file under dir (recursively) holds the marker the tests write for custom v2 data. */
static int holds_custom(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    char path[4096];
    while (!found && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            found = holds_custom(path);
        } else if (S_ISREG(st.st_mode)) {
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            char buf[8192];
            size_t n;
            const char *mark = "v2-custom-data";
            while (!found && (n = fread(buf, 1, sizeof buf - 1, f)) > 0) {
                buf[n] = 0;
                for (size_t i = 0; i + strlen(mark) <= n; i++)
                    if (!memcmp(buf + i, mark, strlen(mark))) { found = 1; break; }
            }
            fclose(f);
        }
    }
    closedir(d);
    return found;
}

static int etcdutl(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "version")) {
        printf("etcdutl version: %s\nAPI version: 3.%d\n", STANDIN_VERSION, minor_of(STANDIN_VERSION));
        return 0;
    }
    int has_check = minor_of(STANDIN_VERSION) == 5 && patch_of(STANDIN_VERSION) >= 18;
    if (argc > 4 && has_check && !strcmp(argv[1], "check") && !strcmp(argv[2], "v2store") &&
        !strcmp(argv[3], "--data-dir")) {
        char member[4096];
        snprintf(member, sizeof member, "%s/member", argv[4]);
        if (holds_custom(member)) {
            fprintf(stderr, "Error: detected custom content in v2store\n");
            return 1;
        }
        printf("No custom content found in both v2store and WAL records.\n");
        return 0;
    }
    fprintf(stderr, "Error: unknown command \"%s\" for \"etcdutl\"\n", argc > 1 ? argv[1] : "");
    return 1;
}

int main(int argc, char **argv) {
    char *name = basename(argv[0]);
    if (!strcmp(name, "etcdutl")) return etcdutl(argc, argv);
    if (!strcmp(name, "etcdctl")) {
        if (argc > 1 && !strcmp(argv[1], "version")) {
            printf("etcdctl version: %s\nAPI version: 3.%d\n", STANDIN_VERSION, minor_of(STANDIN_VERSION));
            return 0;
        }
        fprintf(stderr, "stand-in etcdctl %s: only `version`\n", STANDIN_VERSION);
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "--version")) {
        printf("etcd Version: %s\nGit SHA: standin\nGo Version: go1.24.11\nGo OS/Arch: linux/amd64\n",
               STANDIN_VERSION);
        return 0;
    }
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(HELP_TEXT, stdout);
        return 0;
    }
    /* The server: python3 -c MEMBER_PY VERSION args..., the help text (which flags exist) in the
     * environment. */
    setenv("STANDIN_HELP", HELP_TEXT, 1);
    char **args = calloc(argc + 4, sizeof *args);
    args[0] = "python3";
    args[1] = "-c";
    args[2] = (char *)MEMBER_PY;
    args[3] = STANDIN_VERSION;
    for (int i = 1; i < argc; i++) args[3 + i] = argv[i];
    execvp("python3", args);
    perror("stand-in etcd: python3");
    return 1;
}
