//! A disk that fills up and then turns read-only under the data directory: publishes fail
//! with 507 and then 503 and write nothing, DNS keeps answering from the last publish, the
//! signature refreshes that cannot be stored put the zone "at risk" in the log and the
//! metrics, and once space returns publishing resumes without a restart.
//!
//! The disk is an ext4 image on a loop device, not a tmpfs: a tmpfs cannot be remounted
//! read-only while Herald holds the store open (EBUSY), whereas ext4's error trigger turns
//! the file system read-only under open files, as a failing disk does (`errors=remount-ro`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::harness::*;

/// A small ext4 file system mounted on a loop device; unmounted on drop.
struct SmallDisk {
    mount: PathBuf,
    device: String,
}

impl SmallDisk {
    fn new(dir: &Path, megabytes: u32) -> Self {
        let image = dir.join("disk.img");
        let mount = dir.join("disk");
        std::fs::create_dir_all(&mount).unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("truncate")
            .arg(format!("-s{megabytes}M"))
            .arg(&image));
        // No blocks reserved for root: the test runs as root and must be able to fill it.
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&image));
        run(Command::new("mount")
            .args(["-o", "loop,errors=remount-ro"])
            .arg(&image)
            .arg(&mount));
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let device = mounts
            .lines()
            .find(|l| l.split(' ').nth(1) == Some(mount.to_str().unwrap()))
            .and_then(|l| l.split(' ').next())
            .and_then(|d| d.strip_prefix("/dev/"))
            .expect("the loop device in /proc/mounts")
            .to_owned();
        Self { mount, device }
    }

    /// Writes a filler file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.mount.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xA5u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }

    /// Turns the file system read-only under every open file, as a disk error does.
    fn fail(&self) {
        std::fs::write(
            format!("/sys/fs/ext4/{}/trigger_fs_error", self.device),
            "1",
        )
        .unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

fn at_risk(server: &Server) -> Option<f64> {
    metric(server, "herald_zone_at_risk{zone=\"example.test\"}")
}

fn served(server: &Server, node: &str) -> Vec<String> {
    txt(&query(
        server.dns,
        &format!("{node}.example.test."),
        RecordType::TXT,
        false,
    ))
}

#[test]
#[ignore = "needs root, a loop device and mkfs.ext4"]
fn a_full_then_read_only_disk_refuses_publishes_and_dns_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::new(dir.path(), 24);
    let data = disk.mount.join("data");
    // Signatures that live ten seconds, each re-signed six seconds after it was made (the
    // largest refresh a 10 s validity allows): the store is written every few seconds.
    let server = Server::start_with(
        &data,
        &repo_zones(),
        Some(TOKEN),
        &["--dnssec", "example.test:validity=10s,refresh=6s"],
    );
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    assert_eq!(at_risk(&server), Some(0.0));

    // Full: publishes are 507 and write nothing; DNS answers as before. (SQLite may still
    // fit a few writes into pages it already holds.)
    let filler = disk.fill();
    let mut refused = None;
    for i in 0..5_000 {
        let node = format!("full-{i}");
        let r = server.put("example.test", &node, SHA256);
        if r.status != 201 {
            refused = Some((node, r));
            break;
        }
    }
    let (node, r) = refused.expect("a publish is refused once the disk is full");
    assert_eq!(r.status, 507, "{:?}", r.json);
    let message = r.json["error"].as_str().unwrap();
    assert!(
        message.contains("full") && message.contains("nothing was written"),
        "{message}"
    );
    let path = format!("/v1/zones/example.test/nodes/{node}");
    assert_eq!(
        server.call("GET", &path, None).status,
        404,
        "nothing half-applied"
    );
    let batch = json!({"set": [{"node": "b1", "commit": SHA1}, {"node": "b2", "commit": SHA1}]});
    let r = server.call("POST", "/v1/zones/example.test/batch", Some(&batch));
    assert_eq!(r.status, 507, "{:?}", r.json);
    assert_eq!(
        server
            .call("GET", "/v1/zones/example.test/nodes/b1", None)
            .status,
        404
    );
    assert!(
        served(&server, "n1")[0].contains(SHA1),
        "DNS answers from the last publish"
    );
    // The refreshes cannot be stored: the zone is at risk, once in the log and in the metric.
    wait_for(Duration::from_secs(30), "herald_zone_at_risk 1", || {
        at_risk(&server) == Some(1.0)
    });
    // The metric flips just before the line is logged.
    wait_for(
        Duration::from_secs(5),
        "\"zone at risk\" in the log",
        || server.log().contains("zone at risk"),
    );
    assert!(served(&server, "n1")[0].contains(SHA1));

    // Space returns: publishing resumes and the risk clears, with no restart.
    std::fs::remove_file(&filler).unwrap();
    wait_for(
        Duration::from_secs(30),
        "a publish after space returned",
        || server.put("example.test", "after-full", SHA1).status == 201,
    );
    assert!(served(&server, "after-full")[0].contains(SHA1));
    wait_for(Duration::from_secs(30), "herald_zone_at_risk 0", || {
        at_risk(&server) == Some(0.0)
    });
    // The metric flips just before the line is logged.
    wait_for(
        Duration::from_secs(5),
        "\"no longer at risk\" in the log",
        || server.log().contains("no longer at risk"),
    );

    // Read-only: 503, nothing written, DNS still answers.
    disk.fail();
    let r = server.put("example.test", "after-ro", SHA256);
    assert_eq!(r.status, 503, "{:?}", r.json);
    assert!(
        r.json["error"]
            .as_str()
            .unwrap()
            .contains("cannot be written"),
        "{:?}",
        r.json
    );
    assert_eq!(
        server
            .call("GET", "/v1/zones/example.test/nodes/after-ro", None)
            .status,
        404
    );
    let r = server.call("POST", "/v1/zones/example.test/batch", Some(&batch));
    assert_eq!(r.status, 503, "{:?}", r.json);
    assert!(served(&server, "after-full")[0].contains(SHA1));
    assert!(served(&server, "n1")[0].contains(SHA1));
    wait_for(
        Duration::from_secs(30),
        "herald_zone_at_risk 1 again",
        || at_risk(&server) == Some(1.0),
    );
    drop(server);
}
