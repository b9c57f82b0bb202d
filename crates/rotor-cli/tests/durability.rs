//! Nothing half-done, nothing lost (issue 16), through the real `rotor` binary on the local
//! store:
//!
//! * a kill after every history event of a rotation (every state boundary, and inside every
//!   Task between its scheduling and its answer), for each kind (vendor, generated, IAM), then
//!   `rotor recover`: the secret ends rotated or on its old value, consistent, rotatable, with
//!   one audit record naming who recovered it and why;
//! * the scenarios the issue names: killed after Promote (history shows it RUNNING; recover
//!   probes the application and completes or reverts), killed before Promote (recover leaves
//!   the secret rotatable), a revert then a rollback (the rejected candidate is never
//!   installed), a rollback twice (the second is a no-op);
//! * SIGINT stops at a state boundary and `rotor resume` goes on; `rotor abort` clears an
//!   AWSPENDING nobody owns; `--reason` is required;
//! * 10 concurrent rotations of one secret (exactly one wins) and 20 of different secrets on one
//!   store (all succeed).
//!
//! Kills use `ROTOR_FAULT_ABORT_AFTER_EVENT=N`: the process aborts (SIGABRT, as abrupt as a
//! SIGKILL: no destructor, no flush) right after history event N is written.

mod common;

use common::*;
use rotor_core::iam::KeyValue;
use rotor_core::ports::{Iam, SecretStore};
use rotor_core::secret::{SecretValue, Version};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ABORT_ENV: &str = "ROTOR_FAULT_ABORT_AFTER_EVENT";
const USER: &str = "durability-app";

/// An application health endpoint on loopback that answers with the status it is set to.
struct Health {
    url: String,
    status: Arc<AtomicU16>,
}

impl Health {
    fn start() -> Health {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/health", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(200));
        let s = status.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf);
                let code = s.load(Ordering::SeqCst);
                let body = if code == 200 { "ok" } else { "broken" };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Health { url, status }
    }
    fn set(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Vendor,
    Generated,
    Iam,
}

/// One test's world: a store, the vendor stand-in, an application endpoint.
struct World {
    rotor: Rotor,
    stand: StandIn,
    app: Health,
}

impl World {
    fn new(label: &str) -> World {
        World {
            rotor: Rotor::new(label),
            stand: StandIn::start(),
            app: Health::start(),
        }
    }

    fn app_tag(&self) -> String {
        format!("rotor:app-health-url={}", self.app.url)
    }

    /// Creates `id` of `kind`; answers its first value.
    fn create(&self, id: &str, kind: Kind) -> String {
        let app = self.app_tag();
        match kind {
            Kind::Vendor => {
                let key = self.stand.issue_key("openai");
                self.rotor
                    .create_vendor_secret(id, &key, &self.stand.probe_url("openai"), &[&app]);
                key
            }
            Kind::Generated => {
                let file = self.rotor.file(
                    &format!("g-{}", uuid::Uuid::new_v4()),
                    b"first-generated-value",
                );
                self.rotor
                    .run(&[
                        "secret",
                        "create",
                        id,
                        "--kind",
                        "generated",
                        "--tag",
                        &app,
                        "--value-file",
                        &file,
                    ])
                    .expect_ok();
                "first-generated-value".into()
            }
            Kind::Iam => {
                let store = self.rotor.open_store();
                let user = format!("{USER}-{}", uuid::Uuid::new_v4().simple());
                store.create_user(&user).unwrap();
                let key = block_on(Iam::create_access_key(&store, &user)).unwrap();
                let value = KeyValue {
                    access_key_id: key.access_key_id.clone(),
                    secret_access_key: key.secret_access_key.clone(),
                    user_name: Some(user.clone()),
                }
                .to_value();
                let tags: BTreeMap<String, String> = [
                    ("rotor:kind", "iam-access-key"),
                    ("rotor:iam-user", user.as_str()),
                    ("rotor:app-health-url", self.app.url.as_str()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                store.create_secret(id, &value, tags, None).unwrap();
                value.expose().to_string()
            }
        }
    }

    /// The rotate command for `kind` (a fresh candidate for vendor keys).
    fn rotate_args(&self, id: &str, kind: Kind, reason: &str) -> Vec<String> {
        let mut args: Vec<String> = ["rotate", "--secret", id, "--reason", reason]
            .map(String::from)
            .to_vec();
        if kind == Kind::Vendor {
            let file = self.rotor.file(
                &format!("c-{}", uuid::Uuid::new_v4()),
                self.stand.issue_key("openai").as_bytes(),
            );
            args.extend(["--candidate-file".to_string(), file]);
        }
        args
    }

    fn rotate(&self, id: &str, kind: Kind) -> Out {
        let args = self.rotate_args(id, kind, "durability");
        self.rotor
            .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Runs `args` with the process aborting after history event `n`; answers whether it
    /// was killed (false: it ended before reaching event `n`).
    fn killed_after(&self, args: &[String], n: u64) -> bool {
        let out = self
            .rotor
            .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .env(ABORT_ENV, n.to_string())
            .output()
            .unwrap();
        out.status.signal() == Some(libc::SIGABRT)
    }

    fn execution_of(&self, id: &str) -> Vec<Value> {
        self.rotor
            .executions()
            .into_iter()
            .filter(|e| e["secret_id"] == id)
            .collect()
    }

    /// The history events of the one execution of `id`.
    fn events(&self, id: &str) -> Vec<Value> {
        let ex = self.execution_of(id);
        assert_eq!(ex.len(), 1, "{id}: {ex:?}");
        let name = ex[0]["name"].as_str().unwrap();
        let out = self.rotor.run(&["history", "--execution", name, "--json"]);
        out.expect_ok();
        out.json()["events"].as_array().expect("events").clone()
    }

    fn audit_of(&self, id: &str) -> Vec<Value> {
        self.rotor
            .audit()
            .into_iter()
            .filter(|r| r["secret_id"] == id)
            .collect()
    }

    fn current_value(&self, id: &str) -> String {
        self.rotor
            .reveal(id, "AWSCURRENT")
            .expect("AWSCURRENT reads")
    }

    /// The invariants every interruption must leave: labels consistent, no AWSPENDING, and for
    /// an IAM key exactly one access key, Active, the one AWSCURRENT holds.
    fn assert_settled(&self, id: &str, kind: Kind) {
        let store = self.rotor.open_store();
        let info = describe(&store, id);
        assert_consistent(&info);
        assert!(
            version_with(&info, "AWSPENDING").is_none(),
            "{id}: AWSPENDING left: {info:?}"
        );
        if kind == Kind::Iam {
            let current =
                KeyValue::parse(id, "current", &SecretValue::new(self.current_value(id))).unwrap();
            let user = current.user_name.clone().unwrap();
            let keys = block_on(store.list_access_keys(&user)).unwrap();
            let active: Vec<_> = keys.iter().filter(|k| k.status == "Active").collect();
            assert_eq!(active.len(), 1, "{id}: one Active key: {keys:?}");
            assert_eq!(
                active[0].access_key_id, current.access_key_id,
                "{id}: AWSCURRENT's key is the Active one"
            );
            assert_eq!(keys.len(), 1, "{id}: no extra key left: {keys:?}");
        }
    }
}

/// Runs every command at once (separate processes) and waits for all of them.
fn run_all(rotor: &Rotor, runs: &[Vec<String>]) -> Vec<std::process::Output> {
    let children: Vec<_> = runs
        .iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            rotor
                .command(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// The number of history events of one uninterrupted rotation of `kind`.
fn events_of_a_rotation(w: &World, kind: Kind) -> u64 {
    let id = format!("reference/{kind:?}");
    w.create(&id, kind);
    w.rotate(&id, kind).expect_ok();
    w.events(&id).len() as u64
}

/// Kills a rotation after each of its events in turn, recovers it, and checks the secret.
fn kill_at_every_event(kind: Kind) {
    let w = World::new(&format!("kill-{kind:?}"));
    let total = events_of_a_rotation(&w, kind);
    let (mut rotated, mut old, mut killed_after_promote) = (0, 0, 0);
    for n in 1..total {
        let id = format!("kill/{kind:?}/{n}");
        let first = w.create(&id, kind);
        let args = w.rotate_args(&id, kind, "scheduled");
        assert!(
            w.killed_after(&args, n),
            "{id}: the run reached its end before event {n}"
        );
        let ex = w.execution_of(&id);
        assert_eq!(ex.len(), 1, "{id}");
        assert_eq!(
            ex[0]["status"], "RUNNING",
            "{id}: a killed execution shows as RUNNING"
        );
        let events = w.events(&id);
        assert_eq!(
            events.len() as u64,
            n,
            "{id}: its events up to the kill are kept"
        );
        let promoted = events.iter().any(|e| {
            e["type"] == "TaskStateExited" && e["stateExitedEventDetails"]["name"] == "Promote"
        });
        killed_after_promote += promoted as u32;
        // A new rotation is refused until the interrupted one is finished.
        let refused = w.rotate(&id, kind);
        assert_ne!(refused.code, 0, "{id}: {}", refused.show());
        assert!(
            refused.text().contains("rotor recover"),
            "{}",
            refused.show()
        );

        let rec = w.rotor.run(&[
            "recover",
            "--secret",
            &id,
            "--reason",
            "after the kill",
            "--requested-by",
            "test:oncall",
        ]);
        assert!([0, 3, 4].contains(&rec.code), "{id}: {}", rec.show());
        w.assert_settled(&id, kind);
        let now = w.current_value(&id);
        let ex = w.execution_of(&id);
        assert_eq!(ex.len(), 1, "{id}: recovered in the same execution");
        let audit = w.audit_of(&id);
        assert_eq!(
            audit.len(),
            1,
            "{id}: one audit record per execution: {audit:?}"
        );
        let record = &audit[0];
        assert_eq!(record["execution_id"], ex[0]["execution_id"]);
        assert_eq!(record["reason"], "scheduled", "{id}");
        // Who recovered it and why, unless the kill came after the audit step had written the
        // record (the recovery is then in the execution's input and its ExecutionRedriven event).
        let audited_before_kill = events.iter().any(|e| {
            e["type"] == "TaskStateExited"
                && e["stateExitedEventDetails"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("Audit"))
        });
        if !audited_before_kill {
            assert_eq!(
                record["recovery"]["reason"], "after the kill",
                "{id}: {record}"
            );
            assert_eq!(record["recovery"]["requested_by"], "test:oncall", "{id}");
        }
        match record["outcome"].as_str().unwrap() {
            "rotated" => {
                assert_ne!(now, first, "{id}: rotated means a new value");
                assert_eq!(rec.code, 0, "{id}: {}", rec.show());
                rotated += 1;
            }
            "abandoned" | "refused" => {
                assert!(!promoted, "{id}: abandoned only before Promote");
                assert_eq!(now, first, "{id}");
                assert_eq!(rec.code, 3, "{id}: {}", rec.show());
                old += 1;
            }
            other => panic!("{id}: unexpected outcome {other}: {}", rec.show()),
        }
        // And the secret rotates again.
        w.rotate(&id, kind).expect_ok();
        w.assert_settled(&id, kind);
    }
    println!(
        "kill-at-every-event {kind:?}: {} kills ({killed_after_promote} after Promote), recovered: {rotated} rotated, {old} on the old value, invariant violations 0",
        total - 1
    );
    assert!(rotated > 0 && old > 0 && killed_after_promote > 0);
}

#[test]
fn a_vendor_rotation_killed_after_any_event_recovers() {
    kill_at_every_event(Kind::Vendor);
}

#[test]
fn a_generated_rotation_killed_after_any_event_recovers() {
    kill_at_every_event(Kind::Generated);
}

#[test]
fn an_iam_rotation_killed_after_any_event_recovers() {
    kill_at_every_event(Kind::Iam);
}

/// The history event after which Promote has exited (the new value is live, unproven).
fn promote_exited(events: &[Value]) -> u64 {
    events
        .iter()
        .find(|e| {
            e["type"] == "TaskStateExited" && e["stateExitedEventDetails"]["name"] == "Promote"
        })
        .and_then(|e| e["id"].as_u64())
        .unwrap()
}

#[test]
fn killed_after_promote_shows_running_and_recover_probes_the_application() {
    let w = World::new("after-promote");
    w.create("ref", Kind::Vendor);
    w.rotate("ref", Kind::Vendor).expect_ok();
    let n = promote_exited(&w.events("ref"));

    // Healthy application: recover goes on and completes the rotation.
    let first = w.create("app/ok", Kind::Vendor);
    assert!(w.killed_after(&w.rotate_args("app/ok", Kind::Vendor, "quarterly"), n));
    let ex = &w.execution_of("app/ok")[0];
    assert_eq!(ex["status"], "RUNNING");
    let text = w.rotor.run(&["history"]).stdout();
    assert!(
        text.lines()
            .any(|l| l.contains("RUNNING") && l.contains("app/ok")),
        "{text}"
    );
    assert_ne!(
        w.current_value("app/ok"),
        first,
        "the unproven value is live"
    );
    assert!(w.audit_of("app/ok").is_empty(), "no audit record yet");
    let rec = w
        .rotor
        .run(&["recover", "--secret", "app/ok", "--reason", "kill"]);
    rec.expect_ok();
    let events = w.events("app/ok");
    let probed = events.iter().any(|e| {
        e["type"] == "TaskStateExited" && e["stateExitedEventDetails"]["name"] == "ProbeApplication"
    });
    assert!(probed, "recover ran the application probe");
    assert!(events.iter().any(|e| e["type"] == "ExecutionRedriven"));
    assert_eq!(w.audit_of("app/ok")[0]["outcome"], "rotated");

    // Broken application: recover probes, fails, reverts to the old value.
    let first = w.create("app/broken", Kind::Vendor);
    assert!(w.killed_after(&w.rotate_args("app/broken", Kind::Vendor, "quarterly"), n));
    w.app.set(401);
    let rec = w
        .rotor
        .run(&["recover", "--secret", "app/broken", "--reason", "kill"]);
    w.app.set(200);
    rec.expect_code(4);
    assert_eq!(
        w.current_value("app/broken"),
        first,
        "reverted to the old value"
    );
    w.assert_settled("app/broken", Kind::Vendor);
    assert_eq!(w.audit_of("app/broken")[0]["outcome"], "rolled-back");
}

#[test]
fn killed_before_promote_recover_leaves_the_secret_rotatable() {
    let w = World::new("before-promote");
    w.create("ref", Kind::Vendor);
    w.rotate("ref", Kind::Vendor).expect_ok();
    let n = promote_exited(&w.events("ref")) - 5;
    let first = w.create("s", Kind::Vendor);
    assert!(w.killed_after(&w.rotate_args("s", Kind::Vendor, "quarterly"), n));
    let store = w.rotor.open_store();
    assert!(
        version_with(&describe(&store, "s"), "AWSPENDING").is_some(),
        "a candidate is staged"
    );
    let blocked = w.rotate("s", Kind::Vendor);
    assert_ne!(blocked.code, 0);
    w.rotor
        .run(&["recover", "--secret", "s", "--reason", "kill"])
        .expect_code(3);
    assert_eq!(w.current_value("s"), first);
    w.assert_settled("s", Kind::Vendor);
    assert_eq!(w.audit_of("s")[0]["outcome"], "abandoned");
    w.rotate("s", Kind::Vendor).expect_ok();
}

#[test]
fn a_rollback_after_a_revert_never_installs_the_rejected_candidate_and_twice_is_a_no_op() {
    let w = World::new("rollback");
    let v0 = w.create("s", Kind::Vendor);
    w.rotate("s", Kind::Vendor).expect_ok();
    let v1 = w.current_value("s");
    // The next candidate breaks the application: reverted.
    w.app.set(401);
    let file = w.rotor.file("bad", w.stand.issue_key("openai").as_bytes());
    w.rotor
        .run(&[
            "rotate",
            "--secret",
            "s",
            "--candidate-file",
            &file,
            "--reason",
            "q2",
        ])
        .expect_code(4);
    w.app.set(200);
    assert_eq!(w.current_value("s"), v1);
    let store = w.rotor.open_store();
    let info = describe(&store, "s");
    let rejected = info
        .versions
        .iter()
        .find(|v| v.stages.is_empty())
        .expect("the rejected candidate stays, unlabelled");
    assert_eq!(
        w.rotor.reveal("s", "AWSPREVIOUS").as_deref(),
        Some(v0.as_str()),
        "AWSPREVIOUS is back where it was before the failed rotation"
    );
    // Roll back: to the version before the last good rotation, never the rejected one.
    let out = w
        .rotor
        .run(&["rollback", "--secret", "s", "--reason", "incident", "--yes"]);
    out.expect_ok();
    assert_eq!(w.current_value("s"), v0);
    let after = describe(&store, "s");
    assert!(
        after
            .versions
            .iter()
            .find(|v| v.version_id == rejected.version_id)
            .unwrap()
            .stages
            .is_empty(),
        "the rejected candidate holds no label: {after:?}"
    );
    let executions = w.execution_of("s").len();
    let again = w
        .rotor
        .run(&["rollback", "--secret", "s", "--reason", "incident", "--yes"]);
    again.expect_ok();
    assert!(again.stdout().contains("nothing to do"), "{}", again.show());
    assert_eq!(
        w.current_value("s"),
        v0,
        "the second rollback changed nothing"
    );
    assert_eq!(
        w.execution_of("s").len(),
        executions,
        "and ran no execution"
    );
    // --to-version goes elsewhere explicitly.
    let v1_id = describe(&store, "s")
        .versions
        .iter()
        .find(|v| v.stages.iter().any(|s| s == "AWSPREVIOUS"))
        .unwrap()
        .version_id
        .clone();
    w.rotor
        .run(&[
            "rollback",
            "--secret",
            "s",
            "--to-version",
            &v1_id,
            "--reason",
            "undo",
            "--yes",
        ])
        .expect_ok();
    assert_eq!(w.current_value("s"), v1);
}

#[test]
fn a_rollback_target_the_vendor_rejects_is_refused_unless_forced() {
    let w = World::new("rollback-probe");
    let dead = unissued_openai_key();
    w.rotor
        .create_vendor_secret("s", &dead, &w.stand.probe_url("openai"), &[]);
    w.rotate("s", Kind::Vendor).expect_ok();
    let live = w.current_value("s");
    let out = w
        .rotor
        .run(&["rollback", "--secret", "s", "--reason", "test", "--yes"]);
    out.expect_code(3);
    assert!(out.text().contains("Probe.Rejected"), "{}", out.show());
    assert_eq!(w.current_value("s"), live, "nothing changed");
    w.rotor
        .run(&[
            "rollback", "--secret", "s", "--reason", "test", "--yes", "--force",
        ])
        .expect_ok();
    assert_eq!(w.current_value("s"), dead);
}

#[test]
fn sigint_stops_at_a_state_boundary_and_resume_goes_on() {
    let w = World::new("sigint");
    let key = w.stand.issue_key("openai");
    w.rotor.create_vendor_secret(
        "s",
        &key,
        &w.stand.probe_url("openai"),
        &[
            "rotor:wait-propagation-seconds=0",
            "rotor:wait-consumers-seconds=60",
        ],
    );
    let file = w.rotor.file("c", w.stand.issue_key("openai").as_bytes());
    let args = [
        "rotate",
        "--secret",
        "s",
        "--candidate-file",
        &file,
        "--reason",
        "q",
        "--real-time",
    ];
    let child = w.rotor.spawn(&args);
    // Bounded: the run reaches WaitForConsumers within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting = !w.execution_of("s").is_empty()
            && w.events("s").iter().any(|e| {
                e["type"] == "WaitStateEntered"
                    && e["stateEnteredEventDetails"]["name"] == "WaitForConsumers"
            });
        if waiting {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run never reached WaitForConsumers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = w.rotor.wait(&args, child);
    out.expect_code(5);
    assert!(
        out.stdout().contains("rotor resume --execution"),
        "{}",
        out.show()
    );
    let ex = &w.execution_of("s")[0];
    assert_eq!(ex["status"], "ABORTED");
    assert!(ex["cause"].as_str().unwrap().contains("SIGINT"), "{ex}");
    let name = ex["name"].as_str().unwrap().to_string();
    w.rotor
        .run(&["resume", "--execution", &name, "--reason", "go on"])
        .expect_ok();
    let audit = w.audit_of("s");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["outcome"], "rotated");
    assert_eq!(audit[0]["recovery"]["mode"], "resume");
    // A finished execution is not resumed again.
    let again = w
        .rotor
        .run(&["resume", "--execution", &name, "--reason", "again"]);
    assert_eq!(again.code, 2, "{}", again.show());
    assert!(again.stderr().contains("has ended"), "{}", again.show());
}

#[test]
fn an_awspending_nobody_owns_is_cleared_by_an_audited_abort() {
    let w = World::new("abort");
    let first = w.create("s", Kind::Vendor);
    let store = w.rotor.open_store();
    let stale = uuid::Uuid::new_v4().to_string();
    block_on(store.put_pending("s", &stale, &SecretValue::new("staged-elsewhere"))).unwrap();
    let blocked = w.rotate("s", Kind::Vendor);
    blocked.expect_code(3);
    assert!(
        blocked.text().contains("Rotation.InProgress") && blocked.text().contains("rotor abort"),
        "{}",
        blocked.show()
    );
    let rec = w.rotor.run(&["recover", "--secret", "s", "--reason", "x"]);
    assert_eq!(rec.code, 2, "{}", rec.show());
    assert!(
        rec.stderr().contains("rotor abort --secret s"),
        "{}",
        rec.show()
    );
    w.rotor
        .run(&[
            "abort",
            "--secret",
            "s",
            "--reason",
            "crashed CI job",
            "--requested-by",
            "test:oncall",
        ])
        .expect_ok();
    w.assert_settled("s", Kind::Vendor);
    assert_eq!(w.current_value("s"), first);
    // The refused rotation is audited as refused; the abort has its own record.
    let audit: Vec<Value> = w
        .audit_of("s")
        .into_iter()
        .filter(|r| r["action"] == "abort")
        .collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["outcome"], "aborted");
    assert_eq!(audit[0]["reason"], "crashed CI job");
    assert_eq!(audit[0]["requested_by"], "test:oncall");
    assert_eq!(audit[0]["old_version_id"], stale.as_str());
    // The version stays for the record; the secret rotates again.
    assert!(block_on(store.get_value("s", &Version::Id(stale))).is_ok());
    w.rotate("s", Kind::Vendor).expect_ok();
}

#[test]
fn who_and_why_are_required() {
    let w = World::new("who");
    w.create("s", Kind::Generated);
    for args in [
        vec!["rotate", "--secret", "s"],
        vec!["rollback", "--secret", "s"],
        vec!["recover", "--secret", "s"],
        vec!["abort", "--secret", "s"],
        vec!["resume", "--execution", "x"],
    ] {
        let out = w.rotor.run(&args);
        assert_eq!(out.code, 2, "{}", out.show());
        assert!(out.stderr().contains("--reason"), "{}", out.show());
        let mut empty = args.clone();
        empty.extend(["--reason", " "]);
        let out = w.rotor.run(&empty);
        assert_eq!(out.code, 2, "{}", out.show());
        assert!(out.stderr().contains("must not be empty"), "{}", out.show());
    }
    let out = w.rotor.run(&["rotate", "--secret", "s", "--reason", "q"]);
    out.expect_ok();
    let audit = w.audit_of("s");
    assert!(
        audit[0]["requested_by"]
            .as_str()
            .unwrap()
            .starts_with("local:"),
        "the OS user by default: {audit:?}"
    );
}

#[test]
fn concurrent_rotations_of_one_secret_one_wins_and_of_many_all_succeed() {
    let w = World::new("concurrent");
    // Each rotation waits 3 s (real time) for propagation, so all ten overlap.
    let key = w.stand.issue_key("openai");
    w.rotor.create_vendor_secret(
        "one",
        &key,
        &w.stand.probe_url("openai"),
        &[
            "rotor:wait-propagation-seconds=3",
            "rotor:wait-consumers-seconds=0",
        ],
    );
    let first = key;
    let runs: Vec<Vec<String>> = (0..10)
        .map(|_| {
            let mut args = w.rotate_args("one", Kind::Vendor, "race");
            args.push("--real-time".into());
            args
        })
        .collect();
    let outs = run_all(&w.rotor, &runs);
    let codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap()).collect();
    for o in outs
        .iter()
        .filter(|o| ![0, 3].contains(&o.status.code().unwrap()))
    {
        eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    }
    let won = codes.iter().filter(|c| **c == 0).count();
    let refused = codes.iter().filter(|c| **c == 3).count();
    println!("10 concurrent rotations of one secret: {won} rotated, {refused} refused, exit codes {codes:?}");
    assert_eq!(won, 1, "{codes:?}");
    assert_eq!(refused, 9, "{codes:?}");
    w.assert_settled("one", Kind::Vendor);
    assert_ne!(w.current_value("one"), first);

    let ids: Vec<String> = (0..20).map(|i| format!("many/{i}")).collect();
    for id in &ids {
        w.create(id, Kind::Generated);
    }
    let runs: Vec<Vec<String>> = ids
        .iter()
        .map(|id| {
            ["rotate", "--secret", id, "--reason", "fleet"]
                .map(String::from)
                .to_vec()
        })
        .collect();
    let outs = run_all(&w.rotor, &runs);
    let ok = outs.iter().filter(|o| o.status.code() == Some(0)).count();
    println!("20 concurrent rotations of different secrets on one store: {ok} rotated");
    for o in &outs {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for id in &ids {
        w.assert_settled(id, Kind::Generated);
        assert_eq!(w.audit_of(id).len(), 1);
    }
}

/// Every `rotor ...` command in the runbook names a subcommand and flags that exist (the
/// scenarios above run them).
#[test]
fn the_runbook_shows_commands_that_exist() {
    let rotor = Rotor::new("runbook");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/runbook.md"
    ))
    .unwrap();
    let mut checked = 0;
    for line in text.lines() {
        for part in line.split('`') {
            let Some(rest) = part.trim().strip_prefix("rotor ") else {
                continue;
            };
            // Global options first (`rotor --backend aws start ...`): their flags are checked
            // against `rotor --help`, their values skipped.
            let mut words: Vec<&str> = rest.split_whitespace().collect();
            let mut globals = vec![];
            while words.first().is_some_and(|w| w.starts_with("--")) {
                globals.push(words.remove(0));
                if !words.is_empty() {
                    words.remove(0);
                }
            }
            let top = rotor.run(&["--help"]).stdout();
            for g in &globals {
                assert!(
                    top.contains(g),
                    "runbook: `{part}`: {g} is not a global flag"
                );
            }
            let mut sub = vec![];
            for w in &words {
                if w.starts_with("--") {
                    break;
                }
                sub.push(*w);
            }
            let sub: Vec<&str> = sub
                .into_iter()
                .filter(|w| !w.contains('/') && !w.contains('"'))
                .take(2)
                .collect();
            let mut args = sub.clone();
            args.push("--help");
            let help = rotor.run(&args);
            if help.code != 0 {
                // `rotor secret show` etc.: a one-word subcommand followed by an argument.
                let help = rotor.run(&[sub[0], "--help"]);
                help.expect_ok();
            }
            let mut all = rotor.run(&args).stdout();
            all.push_str(&rotor.run(&["--help"]).stdout());
            all.push_str(&rotor.run(&[sub[0], "--help"]).stdout());
            for w in words.iter().filter(|w| w.starts_with("--")) {
                let flag = w.split('=').next().unwrap();
                assert!(
                    all.contains(flag),
                    "runbook: `{part}`: {flag} is not a flag of rotor {}",
                    sub.join(" ")
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "{checked} flags checked");
}
