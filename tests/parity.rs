//! Parity: the deployed combination against the in-process runner.
//!
//! The definition is the one Terraform deployed to moto (DescribeStateMachine of the moto apply
//! in `tests/terraform.rs`), function ARNs `rotor-<env>-<function>` and all. Every scenario
//! runs twice on moto through the AWS adapters, each time on a world of its own (secret, KMS
//! key, stand-ins):
//!
//! * **in-process**: rotor's executor with the handlers in this process (`LocalFunctions`, the
//!   runner's default), each function's clients signed as its role;
//! * **binaries**: the same executor, every Task answered by the real function binaries
//!   (`ROTOR_LAMBDA_BINARIES`, which scripts/test builds: `target/debug`) through the loopback
//!   Lambda Runtime API of `rotor-runtime-api`, with the environment a deployed function has
//!   (`ROTOR_BACKEND=aws`, `ROTOR_KMS_KEY_ID`, the endpoint; each function's key id naming its
//!   role, so scripts/permissions.py checks their calls too).
//!
//! Both runs must agree on the path (the states entered, in order), the final status, the
//! error name and the labels left in moto (version ids named by their part: the initial
//! version, this execution's, an earlier rotation's). The rows with a fault run only through
//! the binaries, against the in-process run of the same scenario without it: a function that
//! exits without answering (`Runtime.ExitError`) and one past its timeout (`Sandbox.Timedout`),
//! each on its first invocation only; the definition retries both, so the path, the status and
//! the labels are those of the run without the fault, and the history shows the failed attempt.
//!
//! moto cannot run a Lambda, so Step Functions' own interpreter is not in this comparison; what
//! a Task's Error and Cause are for each kind of function failure follows what Lambda's Invoke
//! returns (see `rotor-runtime-api`). The CloudWatch metrics of the audit-log function are best
//! effort against moto (it does not serve PutMetricData to the current SDK), in both runs.

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use rotor_asl::executor::{Outcome, Status};
use rotor_aws::AwsAdapters;
use rotor_core::events::{Action, ExecutionInput};
use rotor_core::handlers::token_for;
use rotor_core::iam::KeyValue;
use rotor_core::policy::{
    TAG_APP_HEALTH_URL, TAG_CHARSET, TAG_GRACE, TAG_IAM_USER, TAG_KIND, TAG_LENGTH, TAG_PROBE,
    TAG_PROBE_URL, TAG_WAIT_CONSUMERS, TAG_WAIT_PROPAGATION,
};
use rotor_core::ports::{Iam, Services};
use rotor_core::secret::{SecretValue, AWSPENDING};
use rotor_runner::{run_rotation_json, RunnerOptions, STATE_MACHINE_NAME};
use rotor_runtime_api::{Logs, Options, RuntimeApi};
use rotor_standins::{AppStandIn, VendorStandIn};
use rotor_tests::contract::{unique, AwsFixture};
use rotor_tests::principals::{function_key, function_services};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Who answers the Tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    InProcess,
    Binaries,
}

/// A fault of one function binary, on its first invocation only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Takes the invocation and exits 1 without answering.
    Crash(&'static str),
    /// Takes the invocation and sleeps past the timeout.
    Hang(&'static str),
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A vendor key (openai preset) with an application.
    Vendor,
    Generated,
    Iam,
}

#[derive(Clone, Copy, Debug)]
enum Request {
    /// A candidate the vendor issued (vendor), or none (generated, IAM).
    Rotate,
    /// A candidate the vendor never issued.
    BadCandidate,
    /// The application fails after promote.
    AppFails,
    /// A rotation, then a manual rollback (the row is the rollback).
    Rollback,
    /// Another rotation's AWSPENDING is staged.
    Busy,
    /// A rotate request with `field` set to `value`.
    Field(&'static str, &'static str),
}

struct Scenario {
    name: &'static str,
    kind: Kind,
    request: Request,
    fault: Fault,
}

#[rustfmt::skip]
const SCENARIOS: &[Scenario] = &[
    Scenario { name: "vendor rotated", kind: Kind::Vendor, request: Request::Rotate, fault: Fault::None },
    Scenario { name: "generated rotated", kind: Kind::Generated, request: Request::Rotate, fault: Fault::None },
    Scenario { name: "IAM key rotated", kind: Kind::Iam, request: Request::Rotate, fault: Fault::None },
    Scenario { name: "bad candidate abandoned", kind: Kind::Vendor, request: Request::BadCandidate, fault: Fault::None },
    Scenario { name: "app fails: reverted", kind: Kind::Vendor, request: Request::AppFails, fault: Fault::None },
    Scenario { name: "manual rollback", kind: Kind::Vendor, request: Request::Rollback, fault: Fault::None },
    Scenario { name: "busy secret refused", kind: Kind::Generated, request: Request::Busy, fault: Fault::None },
    Scenario { name: "input: unknown field", kind: Kind::Generated, request: Request::Field("colour", "\"red\""), fault: Fault::None },
    Scenario { name: "input: wrong type", kind: Kind::Generated, request: Request::Field("force", "\"yes\""), fault: Fault::None },
    Scenario { name: "promote crashes once", kind: Kind::Vendor, request: Request::Rotate, fault: Fault::Crash("promote") },
    Scenario { name: "probe times out once", kind: Kind::Vendor, request: Request::Rotate, fault: Fault::Hang("health-probe") },
];

/// The function timeout of the binaries' runs (the hanging function is killed after it).
const TIMEOUT: Duration = Duration::from_secs(3);

/// What a run is compared on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    path: Vec<String>,
    status: String,
    error: Option<String>,
    /// (part, labels) of every version moto keeps, sorted.
    labels: Vec<(String, Vec<String>)>,
}

/// One scenario's world on moto.
struct World {
    fixture: AwsFixture,
    raw: aws_sdk_secretsmanager::Client,
    vendor: VendorStandIn,
    app: AppStandIn,
    services: Services,
    secret_id: String,
    /// Version ids and the part each plays.
    parts: BTreeMap<String, String>,
}

impl World {
    async fn new(kind: Kind) -> World {
        let fixture = AwsFixture::moto().await;
        let adapters = &fixture.adapters;
        let raw = aws_sdk_secretsmanager::Client::new(&adapters.config);
        let secret_id = unique("parity");
        let vendor = VendorStandIn::start().await;
        let current_key = rotor_standins::current_key_from(adapters.store.clone(), &secret_id);
        let app = AppStandIn::for_vendor(current_key, &vendor, "openai").await;
        let mut tags = BTreeMap::from([
            (TAG_WAIT_PROPAGATION.to_string(), "2".to_string()),
            (TAG_WAIT_CONSUMERS.to_string(), "3".to_string()),
        ]);
        let value = match kind {
            Kind::Vendor => {
                tags.insert(TAG_KIND.into(), "vendor-api-key".into());
                tags.insert(TAG_PROBE.into(), "openai".into());
                tags.insert(TAG_PROBE_URL.into(), vendor.probe_url("openai"));
                tags.insert(TAG_APP_HEALTH_URL.into(), app.health_url());
                SecretValue::new(vendor.issue_key("openai"))
            }
            Kind::Generated => {
                tags.insert(TAG_KIND.into(), "generated".into());
                tags.insert(TAG_LENGTH.into(), "40".into());
                tags.insert(TAG_CHARSET.into(), "url-safe".into());
                SecretValue::new("initial-generated-value-set-by-hand")
            }
            Kind::Iam => {
                let user = unique("parity-user");
                aws_sdk_iam::Client::new(&adapters.config)
                    .create_user()
                    .user_name(&user)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("CreateUser {user}: {e:?}"));
                let key = Iam::create_access_key(adapters.iam.as_ref(), &user)
                    .await
                    .unwrap_or_else(|e| panic!("CreateAccessKey {user}: {e}"));
                tags.insert(TAG_KIND.into(), "iam-access-key".into());
                tags.insert(TAG_IAM_USER.into(), user.clone());
                tags.insert(TAG_GRACE.into(), "5".into());
                KeyValue {
                    access_key_id: key.access_key_id,
                    secret_access_key: key.secret_access_key,
                    user_name: Some(user),
                }
                .to_value()
            }
        };
        let initial = adapters
            .store
            .create_secret(&secret_id, &value, &tags, Some("rotor parity"), None)
            .await
            .unwrap_or_else(|e| panic!("CreateSecret {secret_id}: {e}"));
        let services = adapters.services().expect("the adapters' services");
        World {
            raw,
            vendor,
            app,
            services,
            secret_id,
            parts: BTreeMap::from([(initial, "initial".to_string())]),
            fixture,
        }
    }

    fn adapters(&self) -> &AwsAdapters {
        &self.fixture.adapters
    }

    async fn input(&self, action: Action, candidate: Option<&str>) -> Value {
        let candidate_ciphertext = match candidate {
            Some(c) => Some(
                rotor_tests::candidates::sealed(self.adapters().kms.as_ref(), &self.secret_id, c)
                    .await,
            ),
            None => None,
        };
        serde_json::to_value(ExecutionInput {
            action,
            secret_id: self.secret_id.clone(),
            candidate_ciphertext,
            requested_by: Some("parity".into()),
            reason: Some("parity of the deployed combination".into()),
            target_version_id: None,
            force: false,
            recovery: None,
        })
        .expect("an execution input")
    }

    /// Runs `input` with the deployed `definition`; the execution's version is named `part`.
    async fn run(
        &mut self,
        definition: &str,
        input: Value,
        part: &str,
        functions: Option<Arc<RuntimeApi>>,
    ) -> Outcome {
        let name = match input["candidate_ciphertext"].as_str() {
            Some(c) => {
                rotor_core::candidate::Sealed::parse(c)
                    .expect("a sealed candidate")
                    .execution
            }
            None => unique("parity"),
        };
        let arn =
            format!("arn:aws:states:us-east-1:123456789012:execution:{STATE_MACHINE_NAME}:{name}");
        self.parts.insert(token_for(&arn), part.to_string());
        let options = RunnerOptions {
            seed: Some(11),
            function_services: function_services(
                &self.services,
                &self.adapters().config,
                self.adapters().kms.key_id(),
                true,
            ),
            invoker: functions.map(|f| f as Arc<dyn rotor_asl::task::FunctionInvoker>),
            ..Default::default()
        };
        run_rotation_json(definition, self.services.clone(), input, &name, options).await
    }

    /// Every version moto keeps and its labels, each version named by its part.
    async fn labels(&self) -> Vec<(String, Vec<String>)> {
        let page = self
            .raw
            .list_secret_version_ids()
            .secret_id(&self.secret_id)
            .include_deprecated(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListSecretVersionIds {}: {e:?}", self.secret_id));
        let mut out: Vec<(String, Vec<String>)> = page
            .versions()
            .iter()
            .map(|v| {
                let id = v.version_id().unwrap_or_default();
                let mut stages = v.version_stages().to_vec();
                stages.sort();
                let part = self
                    .parts
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| "another".to_string());
                (part, stages)
            })
            .collect();
        out.sort();
        out
    }
}

fn entered(outcome: &Outcome) -> Vec<String> {
    outcome
        .events
        .iter()
        .filter_map(|e| e.get("stateEnteredEventDetails"))
        .filter_map(|d| d["name"].as_str().map(str::to_owned))
        .collect()
}

/// The Task failures of the history: (state, error).
fn task_failures(outcome: &Outcome) -> Vec<(String, String)> {
    let mut state = String::new();
    let mut out = Vec::new();
    for e in &outcome.events {
        if let Some(name) = e["stateEnteredEventDetails"]["name"].as_str() {
            state = name.to_string();
        }
        if e["type"] == "TaskFailed" {
            let error = e["taskFailedEventDetails"]["error"]
                .as_str()
                .unwrap_or_default();
            out.push((state.clone(), error.to_string()));
        }
    }
    out
}

/// A copy of the binaries' directory with `fault` on its function: a bash wrapper that, on
/// its first start only, takes one invocation from the Runtime API and then exits (Crash) or
/// sleeps (Hang); every later start runs the real binary.
fn binaries_with(fault: Fault, binaries: &Path, scratch: &Path) -> PathBuf {
    let (function, then) = match fault {
        Fault::None => return binaries.to_path_buf(),
        Fault::Crash(f) => (f, "exit 1"),
        Fault::Hang(f) => (f, "exec sleep 60"),
    };
    let dir = scratch.join("functions");
    std::fs::create_dir_all(&dir).unwrap();
    for f in rotor_core::dispatch::FUNCTIONS {
        let real = binaries.join(f);
        let path = dir.join(f);
        if f == function {
            let mark = scratch.join("faulted");
            let script = format!(
                r#"#!/usr/bin/env bash
if mkdir '{mark}' 2>/dev/null; then
    exec 3<>"/dev/tcp/${{AWS_LAMBDA_RUNTIME_API%:*}}/${{AWS_LAMBDA_RUNTIME_API#*:}}"
    printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n' >&3
    read -r status <&3
    {then}
fi
exec '{real}'
"#,
                mark = mark.display(),
                real = real.display()
            );
            std::fs::write(&path, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            std::os::unix::fs::symlink(&real, &path).unwrap();
        }
    }
    dir
}

/// The function binaries for `world`, with the environment a deployed function has.
fn runtime(world: &World, dir: &Path, store: &Path, logs: &Path) -> Arc<RuntimeApi> {
    let mut options = Options::new(dir);
    options.timeout = TIMEOUT;
    options.logs = Logs::Dir(logs.to_path_buf());
    options.env = vec![
        ("ROTOR_BACKEND".into(), "aws".into()),
        (
            "ROTOR_KMS_KEY_ID".into(),
            world.adapters().kms.key_id().to_string(),
        ),
        ("AWS_ENDPOINT_URL".into(), rotor_tests::moto::endpoint()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        // A function on the aws backend must never open a local store: this one must stay
        // absent.
        (
            rotor_local_store::STORE_ENV.into(),
            store.display().to_string(),
        ),
        ("RUST_LOG".into(), "info".into()),
    ];
    for f in rotor_core::dispatch::FUNCTIONS {
        options.function_env.insert(
            f.to_string(),
            vec![("AWS_ACCESS_KEY_ID".into(), function_key(f))],
        );
    }
    Arc::new(RuntimeApi::new(options).expect("the function binaries"))
}

/// One scenario in one mode: what it observed, the outcome, and the processes' reports.
async fn play(
    definition: &str,
    scenario: &Scenario,
    mode: Mode,
    binaries: &Path,
) -> (Observed, Outcome, Vec<rotor_runtime_api::InstanceReport>) {
    let scratch = tempfile::tempdir().unwrap();
    let store = scratch.path().join("store-must-not-exist");
    let mut world = World::new(scenario.kind).await;
    let functions = (mode == Mode::Binaries).then(|| {
        let dir = binaries_with(scenario.fault, binaries, scratch.path());
        runtime(&world, &dir, &store, &scratch.path().join("logs"))
    });
    let candidate = |w: &World| match scenario.kind {
        Kind::Vendor => Some(w.vendor.issue_key("openai")),
        _ => None,
    };
    let outcome = match scenario.request {
        Request::Rotate | Request::AppFails | Request::Field(..) => {
            let c = candidate(&world);
            let mut input = world.input(Action::Rotate, c.as_deref()).await;
            if let Request::Field(field, value) = scenario.request {
                input[field] = serde_json::from_str(value).unwrap();
            }
            world
                .app
                .set_broken(matches!(scenario.request, Request::AppFails));
            world
                .run(definition, input, "this execution", functions.clone())
                .await
        }
        Request::BadCandidate => {
            let input = world
                .input(Action::Rotate, Some("NotIssuedByTheVendor0123456789ab"))
                .await;
            world
                .run(definition, input, "this execution", functions.clone())
                .await
        }
        Request::Rollback => {
            let c = candidate(&world);
            let input = world.input(Action::Rotate, c.as_deref()).await;
            let rotated = world
                .run(definition, input, "the rotation", functions.clone())
                .await;
            assert_eq!(rotated.status, Status::Succeeded, "{:?}", rotated.error);
            let input = world.input(Action::Rollback, None).await;
            world
                .run(definition, input, "this execution", functions.clone())
                .await
        }
        Request::Busy => {
            // Another rotation's candidate, staged with the raw client.
            let other = rotor_tests::contract::token();
            world
                .raw
                .put_secret_value()
                .secret_id(&world.secret_id)
                .secret_string("another-rotations-candidate-value")
                .client_request_token(&other)
                .version_stages(AWSPENDING)
                .send()
                .await
                .unwrap_or_else(|e| panic!("PutSecretValue AWSPENDING: {:?}", e.code()));
            world.parts.insert(other, "another rotation's".into());
            let input = world.input(Action::Rotate, None).await;
            world
                .run(definition, input, "this execution", functions.clone())
                .await
        }
    };
    world.app.set_broken(false);
    let reports = match &functions {
        Some(f) => f.stop().await,
        None => Vec::new(),
    };
    assert!(
        !store.exists(),
        "{}: a function binary on the aws backend created a local store at {}",
        scenario.name,
        store.display()
    );
    let observed = Observed {
        path: entered(&outcome),
        status: format!("{:?}", outcome.status),
        error: outcome.error.clone(),
        labels: world.labels().await,
    };
    (observed, outcome, reports)
}

/// Every scenario both ways on the deployed `definition`; prints the table; panics on the
/// first disagreement (after printing).
pub async fn every_scenario_agrees(definition: &str) {
    let binaries = PathBuf::from(rotor_tests::terraform::required_env(
        "ROTOR_LAMBDA_BINARIES",
        "the directory of the six function binaries (scripts/test builds them: target/debug)",
    ));
    for f in rotor_core::dispatch::FUNCTIONS {
        assert!(
            binaries.join(f).is_file(),
            "{} has no function binary {f}: build them (cargo build --bins)",
            binaries.display()
        );
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut starts = Vec::new();
    for scenario in SCENARIOS {
        let plain = Scenario {
            fault: Fault::None,
            ..*scenario
        };
        let (local, local_outcome, _) = play(definition, &plain, Mode::InProcess, &binaries).await;
        let (binary, binary_outcome, reports) =
            play(definition, scenario, Mode::Binaries, &binaries).await;
        starts.extend(reports);
        let failures = task_failures(&binary_outcome);
        let mut agree = local == binary;
        match scenario.fault {
            Fault::None => {}
            Fault::Crash(_) | Fault::Hang(_) => {
                let (state, error) = match scenario.fault {
                    Fault::Crash(_) => ("Promote", "Runtime.ExitError"),
                    _ => ("ProbeCandidate", "Sandbox.Timedout"),
                };
                let retried = failures
                    .iter()
                    .filter(|f| f.0 == state && f.1 == error)
                    .count();
                if retried != 1 {
                    agree = false;
                    problems.push(format!(
                        "{}: expected one {error} in {state}, then a retry that succeeds; the Task failures were {failures:?}",
                        scenario.name
                    ));
                }
            }
        }
        if local != binary {
            problems.push(format!(
                "{}:\n  in-process {local:?}\n    (cause {:?})\n  binaries   {binary:?}\n    (cause {:?})",
                scenario.name, local_outcome.cause, binary_outcome.cause
            ));
        }
        rows.push((scenario.name, local, binary, failures, agree));
    }
    eprintln!("\nparity: the deployed definition, in-process vs the function binaries, on moto");
    eprintln!(
        "{:<26} {:<10} {:<22} {:<6} {:<8} binaries' Task failures (retried)",
        "scenario", "status", "error", "states", "agree"
    );
    for (name, local, binary, failures, agree) in &rows {
        eprintln!(
            "{:<26} {:<10} {:<22} {:<6} {:<8} {}",
            name,
            binary.status,
            binary.error.as_deref().unwrap_or("-"),
            local.path.len(),
            if *agree { "yes" } else { "NO" },
            failures
                .iter()
                .map(|(s, e)| format!("{s}: {e}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let inits: Vec<f64> = starts.iter().filter_map(|r| r.init_ms).collect();
    let rss: Vec<u64> = starts.iter().filter_map(|r| r.peak_rss_kib).collect();
    if !inits.is_empty() {
        let mut sorted = inits.clone();
        sorted.sort_by(f64::total_cmp);
        eprintln!(
            "function processes: {} started, init median {:.1} ms (max {:.1}), peak RSS max {} KiB (debug builds)",
            starts.len(),
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1],
            rss.iter().max().copied().unwrap_or(0)
        );
    }
    assert!(
        problems.is_empty(),
        "parity failed:\n{}",
        problems.join("\n")
    );
}
