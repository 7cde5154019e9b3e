//! The node hook `deploy/hooks/nixos-switch`: it fetches the commit from the first remote that
//! has it, builds, then switches. The remotes are local bare repositories and `nixos-rebuild` is
//! a fake that logs its arguments; git runs without any global or system configuration.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/hooks/nixos-switch")
}

/// Runs git in `dir`, hermetically and with a fixed identity; returns its trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A configuration repository with two commits, `old` and `new`. Remote A has only `old`;
/// remote B has both, with `new` at the tip of `main`.
struct Fleet {
    dir: tempfile::TempDir,
    old: String,
    new: String,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let work = root.join("work");
        fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        fs::write(work.join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
        git(&work, &["add", "flake.nix"]);
        git(&work, &["commit", "-q", "-m", "old"]);
        let old = git(&work, &["rev-parse", "HEAD"]);
        for bare in ["A", "B"] {
            git(root, &["init", "-q", "--bare", "-b", "main", bare]);
        }
        git(&work, &["push", "-q", "../A", "main"]);
        fs::write(work.join("flake.nix"), "{ outputs = _: { x = 1; }; }\n").unwrap();
        git(&work, &["commit", "-q", "-a", "-m", "new"]);
        let new = git(&work, &["rev-parse", "HEAD"]);
        git(&work, &["push", "-q", "../B", "main"]);
        Fleet { dir, old, new }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self, bare: &str) -> String {
        format!("file://{}", self.path(bare).display())
    }

    fn checkout(&self) -> PathBuf {
        self.path("checkout")
    }

    fn log(&self) -> PathBuf {
        self.path("rebuild.log")
    }

    /// What the fake `nixos-rebuild` was called with, one call a line; empty if never called.
    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Writes the fake `nixos-rebuild`: it appends its arguments to the log and exits 0, or 1 on
    /// `build` when `fail_build`.
    fn fake_rebuild(&self, fail_build: bool) -> PathBuf {
        let path = self.path("fake-rebuild");
        let fail = if fail_build {
            "[ \"$1\" = build ] && exit 1\n"
        } else {
            ""
        };
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\n{fail}exit 0\n",
                self.log().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Runs the hook with the herald watch variables, the checkout, the fake rebuild and attribute
    /// `n1`, plus `env` (which may override any of them), in an otherwise empty environment.
    fn run(&self, commit: &str, remotes: &str, fail_build: bool, env: &[(&str, &str)]) -> Output {
        let rebuild = self.fake_rebuild(fail_build);
        let mut cmd = Command::new(script());
        cmd.env_clear()
            .current_dir(self.dir.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HERALD_ZONE", "fleet.test")
            .env("HERALD_NODE", "n1")
            .env("HERALD_SEQ", "7")
            .env("HERALD_COMMIT", commit)
            .env("HERALD_REMOTES", remotes)
            .env("HERALD_CHECKOUT", self.checkout())
            .env("HERALD_REBUILD", &rebuild)
            .env("HERALD_FLAKE_ATTR", "n1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("the hook runs")
    }

    fn flake(&self, commit: &str) -> String {
        format!(
            "--flake git+file://{}?rev={commit}#n1",
            self.checkout().display()
        )
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[ignore = "needs git"]
fn the_hook_fetches_from_the_first_remote_that_has_the_commit_then_builds_and_switches() {
    let f = Fleet::new();
    let remotes = format!("{} {}", f.url("A"), f.url("B"));
    let out = f.run(&f.new, &remotes, false, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let flake = f.flake(&f.new);
    assert_eq!(
        f.calls(),
        [format!("build {flake}"), format!("switch {flake}")]
    );
    assert!(
        err.contains(&format!("remote {} failed or does not have", f.url("A"))),
        "{err}"
    );
    assert!(
        err.contains(&format!("got {} from {}", f.new, f.url("B"))),
        "{err}"
    );
    let co = f.checkout();
    git(&co, &["cat-file", "-e", &format!("{}^{{commit}}", f.new)]);
    assert_eq!(git(&co, &["rev-parse", "HEAD"]), f.new);
    assert_eq!(git(&co, &["for-each-ref", "refs/herald-fallback/"]), "");

    // Again, with the checkout in place (as after a publish of the same commit): same result.
    let out = f.run(&f.new, &remotes, false, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.calls().len(), 4);
}

#[test]
#[ignore = "needs git"]
fn the_hook_falls_back_to_fetching_branches_when_a_host_refuses_a_commit_by_id() {
    let f = Fleet::new();
    // Protocol v0 without uploadpack.allowReachableSHA1InWant refuses `old`, which is not a tip.
    let v0 = [
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "protocol.version"),
        ("GIT_CONFIG_VALUE_0", "0"),
    ];
    let out = f.run(&f.old, &f.url("B"), false, &v0);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("fetching its branches instead"), "{err}");
    let flake = f.flake(&f.old);
    assert_eq!(
        f.calls(),
        [format!("build {flake}"), format!("switch {flake}")]
    );
    let co = f.checkout();
    assert_eq!(git(&co, &["rev-parse", "refs/heads/herald"]), f.old);
    assert_eq!(git(&co, &["for-each-ref", "refs/herald-fallback/"]), "");
}

#[test]
#[ignore = "needs git"]
fn the_hook_fails_when_no_remote_has_the_commit() {
    let f = Fleet::new();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let out = f.run(
        missing,
        &format!("{} {}", f.url("A"), f.url("B")),
        false,
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("no remote has commit {missing}")),
        "{err}"
    );
    assert!(f.calls().is_empty(), "{:?}", f.calls());
}

#[test]
#[ignore = "needs git"]
fn the_hook_does_not_switch_when_the_build_fails() {
    let f = Fleet::new();
    let out = f.run(&f.new, &f.url("B"), true, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(f.calls(), [format!("build {}", f.flake(&f.new))]);
}

#[test]
#[ignore = "needs git"]
fn the_hook_refuses_a_bad_commit_or_no_remotes_before_running_anything() {
    let f = Fleet::new();
    let upper = f.new.to_uppercase();
    let short = &f.new[..39];
    for commit in ["xyz", upper.as_str(), short, ""] {
        let out = f.run(commit, &f.url("B"), false, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{commit:?}: {err}");
        assert!(err.contains("HERALD_COMMIT"), "{err}");
    }
    let out = f.run(&f.new, " ", false, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("HERALD_REMOTES"));
    assert!(f.calls().is_empty());
    assert!(!f.checkout().exists());
}

#[test]
fn the_hook_is_an_executable_shell_script() {
    let path = script();
    let mode = fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "{} mode {mode:o}", path.display());
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("#!/bin/sh\n"));
    assert!(text.lines().any(|l| l == "set -eu"));
}
