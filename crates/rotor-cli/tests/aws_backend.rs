//! `rotor --backend aws` against moto, through the real binary: secrets in Secrets Manager,
//! in-process rotations over Secrets Manager and KMS, `rotor start` on moto's Step Functions
//! interpreter and `rotor history --execution-arn`.
//!
//! Needs the moto server `scripts/test` starts (`ROTOR_MOTO_ENDPOINT`); without it every test
//! panics: run `scripts/test -p rotor-cli --test aws_backend`. moto is shared with other tests
//! running at the same time, so every name here is unique and moto is never reset.
//!
//! moto cannot run Lambda tasks: an execution of the rotation state machine started on it fails
//! at its first Task, and its audit steps fail too. That is what `--wait` reports here.

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use common::{lambda_binaries, StandIn, TempDir};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const REGION: &str = "us-east-1";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/sfn";

fn endpoint() -> String {
    match std::env::var("ROTOR_MOTO_ENDPOINT") {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
        _ => panic!(
            "ROTOR_MOTO_ENDPOINT is not set: these tests need moto; run scripts/test \
             (scripts/test -p rotor-cli --test aws_backend), which starts it"
        ),
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// What one `rotor` run did.
struct Out {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn show(&self) -> String {
        format!(
            "rotor {:?} exited {}\n--- stdout\n{}--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
    fn expect_code(&self, code: i32) -> &Out {
        assert_eq!(self.code, code, "{}", self.show());
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.show()))
    }
}

/// One test's rotor: its own working directory (so a stray ./.rotor would be noticed) and its
/// own local cache directory, moto's test credentials, no ROTOR_* from the caller.
struct Rotor {
    root: TempDir,
    work: PathBuf,
    store: PathBuf,
}

impl Rotor {
    fn new(label: &str) -> Rotor {
        let root = TempDir::new(label);
        let work = root.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let store = root.path().join("cache");
        Rotor { root, work, store }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rotor"));
        c.args(args)
            .current_dir(&self.work)
            .stdin(Stdio::null())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "trace");
        for var in [
            "ROTOR_STORE",
            "ROTOR_BACKEND",
            "ROTOR_CLOCK",
            "ROTOR_KMS_KEY_ID",
            "ROTOR_STATE_MACHINE_ARN",
            "AWS_ENDPOINT_URL",
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
        ] {
            c.env_remove(var);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        self.run_env_stdin(args, env, None)
    }

    /// As [`Rotor::run_env`], with `stdin` written to rotor's standard input when given.
    fn run_env_stdin(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Out {
        let mut c = self.command(args, env);
        let o = match stdin {
            None => c.output().expect("rotor runs"),
            Some(bytes) => {
                let mut child = c
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("rotor runs");
                std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
                child.wait_with_output().expect("rotor runs")
            }
        };
        Out {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: o.status.code().expect("rotor exited"),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_env(args, &[])
    }

    /// `rotor --backend aws --endpoint-url E --store CACHE ARGS...`
    fn aws(&self, args: &[&str]) -> Out {
        self.aws_env(args, &[])
    }

    /// `rotor start` and `rotor history` are what GitHub runs as ci-rotate (and `rotor encrypt`
    /// what an operator runs with no more than ci-rotate may do): their calls are
    /// signed with ci-rotate's key, which the permission check (scripts/permissions.py)
    /// evaluates against ci-rotate's policies as deployed.
    fn aws_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        self.aws_env_stdin(args, env, None)
    }

    /// As [`Rotor::aws_env`], with `stdin` on rotor's standard input.
    fn aws_env_stdin(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Out {
        let e = endpoint();
        let store = self.store.to_string_lossy().into_owned();
        let mut all = vec!["--backend", "aws", "--endpoint-url", &e, "--store", &store];
        all.extend_from_slice(args);
        let mut env = env.to_vec();
        let as_ci = matches!(
            args.first(),
            Some(&"start") | Some(&"history") | Some(&"encrypt")
        );
        if as_ci && !env.iter().any(|(k, _)| *k == "AWS_ACCESS_KEY_ID") {
            env.push(("AWS_ACCESS_KEY_ID", rotor_tests::principals::CI_ROTATE_KEY));
        }
        self.run_env_stdin(&all, &env, stdin)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.root.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn show(&self, id: &str) -> Value {
        self.aws(&["secret", "show", id, "--json"])
            .expect_code(0)
            .json()
    }
}

fn version_with(show: &Value, stage: &str) -> Option<String> {
    show["versions"]
        .as_array()?
        .iter()
        .find(|v| v["stages"].as_array().unwrap().iter().any(|s| s == stage))
        .map(|v| v["version_id"].as_str().unwrap().to_string())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "rotor-cli-tests",
        ))
        .load()
        .await
}

/// Raw SDK clients for moto: what the tests set up and check with.
struct Clients {
    sfn: aws_sdk_sfn::Client,
    kms: aws_sdk_kms::Client,
    sm: aws_sdk_secretsmanager::Client,
}

impl Clients {
    async fn new() -> Clients {
        let config = sdk_config().await;
        Clients {
            sfn: aws_sdk_sfn::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            sm: aws_sdk_secretsmanager::Client::new(&config),
        }
    }

    /// The product's state machine (`statemachine/rotation.asl.json`, rendered with the local
    /// Lambda ARNs, which do not exist on moto), under a unique name; its ARN.
    async fn rotation_state_machine(&self) -> String {
        let definition = rotor_runner::render_definition(
            rotor_runner::load_rotation_definition(),
            &rotor_runner::local_arns(),
        )
        .unwrap();
        self.sfn
            .create_state_machine()
            .name(unique("rotor-cli-rotation"))
            .definition(definition)
            .role_arn(ROLE_ARN)
            .send()
            .await
            .expect("CreateStateMachine")
            .state_machine_arn()
            .to_string()
    }

    /// A new symmetric key with a unique alias; (key ARN, alias name).
    async fn key_with_alias(&self) -> (String, String) {
        let key = self.kms.create_key().send().await.expect("CreateKey");
        let arn = key.key_metadata().unwrap().arn().unwrap().to_string();
        let alias = format!("alias/{}", unique("rotor-cli"));
        self.kms
            .create_alias()
            .alias_name(&alias)
            .target_key_id(&arn)
            .send()
            .await
            .expect("CreateAlias");
        (arn, alias)
    }

    /// KMS Decrypt of an execution input's candidate under its sealed context (the secret,
    /// its execution, its deadline): (plaintext, the key ARN that encrypted it, the execution
    /// name it is sealed for).
    async fn decrypt_candidate(&self, text: &str, secret: &str) -> (String, String, String) {
        let sealed = rotor_core::candidate::Sealed::parse(text).expect("a sealed candidate");
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(sealed.ciphertext.clone()))
            .set_encryption_context(Some(sealed.context(secret).into_iter().collect()))
            .send()
            .await
            .expect("the candidate decrypts under its context {SecretId, Execution, NotAfter}");
        (
            String::from_utf8(out.plaintext.unwrap().into_inner()).unwrap(),
            out.key_id.unwrap_or_default(),
            sealed.execution,
        )
    }

    /// GetExecutionHistory through the SDK: (id, type, the event as the SDK parsed it).
    async fn history(&self, arn: &str) -> Vec<(i64, String, String)> {
        let mut events = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(arn)
                .include_execution_data(true)
                .set_next_token(next.clone())
                .send()
                .await
                .expect("GetExecutionHistory");
            for e in page.events() {
                events.push((e.id(), e.r#type().as_str().to_string(), format!("{e:?}")));
            }
            next = page.next_token().map(str::to_string);
            if next.is_none() {
                return events;
            }
        }
    }
}

/// A vendor-kind secret in moto, created through `rotor secret create`.
fn create_vendor_secret(rotor: &Rotor, id: &str, value: &str, probe_url: &str) {
    let file = rotor.file(&unique("value"), value.as_bytes());
    let url_tag = format!("rotor:probe-url={probe_url}");
    rotor
        .aws(&[
            "secret",
            "create",
            id,
            "--kind",
            "vendor-api-key",
            "--probe",
            "openai",
            "--tag",
            &url_tag,
            "--tag",
            "rotor:wait-propagation-seconds=0",
            "--tag",
            "rotor:wait-consumers-seconds=0",
            "--value-file",
            &file,
        ])
        .expect_code(0);
}

#[test]
fn global_flags_go_before_or_after_the_subcommand() {
    let rotor = Rotor::new("aws-flags");
    let e = endpoint();
    let id = format!("{}/openai_api_key", unique("cli-flags"));
    let value = rotor.file("value", b"sk-first-value\n");

    // Before the subcommand.
    let out = rotor.run(&[
        "--backend",
        "aws",
        "--endpoint-url",
        &e,
        "--region",
        REGION,
        "secret",
        "create",
        &id,
        "--kind",
        "vendor-api-key",
        "--probe",
        "openai",
        "--tag",
        "rotor:app-health-url=https://app.example/health",
        "--value-file",
        &value,
    ]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with(&format!("created {id} (version ")),
        "{}",
        out.show()
    );

    // After it, and mixed.
    let show = rotor.run(&[
        "secret",
        "show",
        &id,
        "--json",
        "--backend",
        "aws",
        "--endpoint-url",
        &e,
    ]);
    show.expect_code(0);
    let doc = show.json();
    let keys: BTreeSet<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["id", "versions", "tags"]), "{doc}");
    assert_eq!(doc["id"], id.as_str());
    let versions = doc["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "{doc}");
    let vkeys: BTreeSet<&str> = versions[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(vkeys, BTreeSet::from(["version_id", "stages"]));
    assert_eq!(versions[0]["stages"], serde_json::json!(["AWSCURRENT"]));
    assert_eq!(doc["tags"]["rotor:kind"], "vendor-api-key");
    assert_eq!(doc["tags"]["rotor:probe"], "openai");
    assert_eq!(
        doc["tags"]["rotor:app-health-url"],
        "https://app.example/health"
    );
    assert!(!show.stdout.contains("sk-first-value"));

    let human = rotor.run(&[
        "--backend",
        "aws",
        "secret",
        "show",
        &id,
        "--endpoint-url",
        &e,
    ]);
    human.expect_code(0);
    assert!(
        human.stdout.contains("AWSCURRENT")
            && human.stdout.contains("tag rotor:kind=vendor-api-key"),
        "{}",
        human.show()
    );

    // The backend from the environment.
    let list = rotor.run_env(
        &["secret", "list", "--json", "--endpoint-url", &e],
        &[("ROTOR_BACKEND", "aws")],
    );
    list.expect_code(0);
    let listed = list.json();
    let mine: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{}", list.show());
    assert_eq!(*mine[0], doc);
    let list = rotor.run(&["secret", "--endpoint-url", &e, "list", "--backend", "aws"]);
    list.expect_code(0);
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("vendor-api-key")),
        "{}",
        list.show()
    );

    // get: only with --reveal, and then the value.
    let refused = rotor.run(&[
        "--backend",
        "aws",
        "--endpoint-url",
        &e,
        "secret",
        "get",
        &id,
    ]);
    refused.expect_code(2);
    assert!(!refused.stdout.contains("sk-first-value") && refused.stderr.contains("--reveal"));
    let got = rotor.run(&[
        "secret",
        "get",
        &id,
        "--reveal",
        "--region",
        REGION,
        "--backend",
        "aws",
        "--endpoint-url",
        &e,
    ]);
    got.expect_code(0);
    assert_eq!(got.stdout, "sk-first-value\n");

    // A secret that does not exist.
    let missing = rotor.run(&[
        "secret",
        "show",
        &unique("cli-missing"),
        "--backend",
        "aws",
        "--endpoint-url",
        &e,
    ]);
    missing.expect_code(2);

    // local stays the default: the same command without --backend reads the local store, which
    // is not there, and creates nothing.
    let local = rotor.run(&["secret", "show", &id, "--endpoint-url", &e]);
    local.expect_code(2);
    assert!(
        local.stderr.contains("there is no rotor store"),
        "{}",
        local.show()
    );
    assert!(!rotor.work.join(".rotor").exists());
    // The in-process commands on aws keep nothing local until they run an execution.
    assert!(!rotor.store.exists());
}

#[test]
fn rotate_and_rollback_run_in_process_against_moto() {
    let rotor = Rotor::new("aws-rotate");
    let id = format!("{}/session_secret", unique("cli-generated"));
    let initial = rotor.file("initial", b"0123456789abcdef0123456789abcdef");
    rotor
        .aws(&[
            "secret",
            "create",
            &id,
            "--kind",
            "generated",
            "--value-file",
            &initial,
        ])
        .expect_code(0);
    let before = version_with(&rotor.show(&id), "AWSCURRENT").unwrap();

    let out = rotor.aws(&[
        "--clock",
        "virtual",
        "rotate",
        "--secret",
        &id,
        "--requested-by",
        "test:aws",
        "--reason",
        "in-process on moto",
        "--json",
    ]);
    out.expect_code(0);
    let doc = out.json();
    assert_eq!(doc["status"], "SUCCEEDED", "{}", out.show());
    assert_eq!(doc["outcome"], "rotated");
    let shown = rotor.show(&id);
    let after = version_with(&shown, "AWSCURRENT").unwrap();
    assert_ne!(after, before);
    assert_eq!(
        version_with(&shown, "AWSPREVIOUS").as_deref(),
        Some(before.as_str())
    );
    assert_eq!(version_with(&shown, "AWSPENDING"), None);
    // CloudWatch metrics cannot be written to moto: best effort, a warning, not a failure.
    assert!(out.stderr.contains("CloudWatch"), "{}", out.show());

    // The record is kept in the local cache: history and audit on aws read it.
    let history = rotor.aws(&["history", "--json"]);
    history.expect_code(0);
    let executions = history.json();
    let execution = executions
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["secret_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{}", history.show()));
    assert_eq!(execution["execution_id"], doc["execution_id"]);
    assert_eq!(execution["status"], "SUCCEEDED");
    let events = rotor
        .aws(&[
            "history",
            "--execution",
            execution["name"].as_str().unwrap(),
            "--json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(events["executionArn"], doc["execution_id"]);
    assert_eq!(events["events"], doc["events"]);
    let audit = rotor
        .aws(&["audit", "--json", "--secret", &id])
        .expect_code(0)
        .json();
    let records = audit.as_array().unwrap();
    assert_eq!(records.len(), 1, "{audit}");
    assert_eq!(records[0]["outcome"], "rotated");
    assert_eq!(records[0]["requested_by"], "test:aws");
    assert_eq!(records[0]["old_version_id"], before.as_str());
    assert_eq!(records[0]["new_version_id"], after.as_str());

    // And back, with the flags after the subcommand.
    let e = endpoint();
    let store = rotor.store.to_string_lossy().into_owned();
    let back = rotor.run(&[
        "rollback",
        "--reason",
        "test",
        "--secret",
        &id,
        "--json",
        "--backend",
        "aws",
        "--endpoint-url",
        &e,
        "--store",
        &store,
        "--clock",
        "virtual",
    ]);
    back.expect_code(0);
    assert_eq!(back.json()["outcome"], "rolled back (manual)");
    assert_eq!(
        version_with(&rotor.show(&id), "AWSCURRENT").as_deref(),
        Some(before.as_str())
    );
    assert!(!rotor.work.join(".rotor").exists());
}

#[test]
fn a_vendor_key_rotates_in_process_with_its_candidate_under_kms() {
    let standin = StandIn::start();
    let rotor = Rotor::new("aws-vendor");
    let rt = runtime();
    let clients = rt.block_on(Clients::new());
    let (_, alias) = rt.block_on(clients.key_with_alias());
    let id = format!("{}/openai_api_key", unique("cli-vendor"));
    let first = standin.issue_key("openai");
    create_vendor_secret(&rotor, &id, &first, &standin.probe_url("openai"));
    let candidate = standin.issue_key("openai");
    let file = rotor.file("candidate", candidate.as_bytes());

    let out = rotor.aws(&[
        "rotate",
        "--reason",
        "test",
        "--secret",
        &id,
        "--candidate-file",
        &file,
        "--kms-key-id",
        &alias,
        "--clock",
        "virtual",
        "--json",
    ]);
    out.expect_code(0);
    assert_eq!(out.json()["outcome"], "rotated", "{}", out.show());
    assert!(!out.stdout.contains(&candidate) && !out.stderr.contains(&candidate));
    let got = rotor.aws(&["secret", "get", &id, "--reveal"]);
    assert_eq!(got.stdout.trim_end(), candidate);

    // A key that does not exist is named, and nothing changes.
    let missing = format!("alias/{}", unique("rotor-cli-missing"));
    let other = standin.issue_key("openai");
    let file = rotor.file("other", other.as_bytes());
    let before = rotor.show(&id);
    let out = rotor.aws_env(
        &[
            "rotate",
            "--reason",
            "test",
            "--secret",
            &id,
            "--candidate-file",
            &file,
        ],
        &[("ROTOR_KMS_KEY_ID", &missing)],
    );
    out.expect_code(2);
    assert!(out.stderr.contains(&missing), "{}", out.show());
    assert_eq!(rotor.show(&id), before);
}

/// Everything `rotor start` put in Step Functions, and what it printed.
struct Started {
    arn: String,
    out: Out,
}

fn start_with_marker(
    rotor: &Rotor,
    id: &str,
    state_machine: &str,
    extra: &[&str],
    marker: &str,
) -> Started {
    let mut args = vec![
        "start",
        "--secret",
        id,
        "--candidate-env",
        "CAND",
        "--requested-by",
        "github:alice",
        "--reason",
        "r",
        "--state-machine",
        state_machine,
    ];
    args.extend_from_slice(extra);
    let out = rotor.aws_env(&args, &[("CAND", marker)]);
    assert!(!out.stdout.contains(marker), "{}", out.show());
    assert!(!out.stderr.contains(marker), "{}", out.show());
    let arn = if extra.contains(&"--json") {
        out.json()["executionArn"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else {
        out.stdout
            .lines()
            .find(|l| l.contains(":execution:"))
            .unwrap_or_default()
            .trim()
            .trim_start_matches("execution ")
            .to_string()
    };
    Started { arn, out }
}

/// The name rotor gives an execution: `rotate-<slug>-<yyyymmddThhmmss>-<8 hex>`.
fn assert_name_shape(name: &str, slug: &str) {
    assert!(
        name.len() <= 80
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{name}"
    );
    let rest = name
        .strip_prefix(&format!("rotate-{slug}-"))
        .unwrap_or_else(|| panic!("{name} does not start with rotate-{slug}-"));
    let (stamp, hash) = rest.split_once('-').unwrap();
    assert_eq!(stamp.len(), 15, "{name}");
    assert_eq!(&stamp[8..9], "T", "{name}");
    assert!(
        stamp[..8]
            .chars()
            .chain(stamp[9..].chars())
            .all(|c| c.is_ascii_digit()),
        "{name}"
    );
    assert_eq!(hash.len(), 8, "{name}");
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{name}"
    );
}

#[test]
fn start_sends_ciphertext_only_and_wait_reports_the_final_status() {
    let rotor = Rotor::new("aws-start");
    let rt = runtime();
    let clients = rt.block_on(Clients::new());
    let state_machine = rt.block_on(clients.rotation_state_machine());
    let (key_arn, alias) = rt.block_on(clients.key_with_alias());
    // Short enough that the whole secret id fits in the execution name.
    let prefix = format!("st-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let id = format!("{prefix}/openai_api_key");
    create_vendor_secret(&rotor, &id, "sk-initial", "http://127.0.0.1:9/unused");
    let marker = format!("rotor-marker-{}", uuid::Uuid::new_v4().simple());

    let started = start_with_marker(
        &rotor,
        &id,
        &state_machine,
        &["--kms-key-id", &alias, "--wait", "--json"],
        &marker,
    );
    let doc = started.out.json();
    let keys: BTreeSet<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["executionArn", "name", "status", "output", "error", "cause"]),
        "{doc}"
    );
    let arn = started.arn.clone();
    assert!(arn.contains(":execution:"), "{}", started.out.show());

    let described = rt
        .block_on(clients.sfn.describe_execution().execution_arn(&arn).send())
        .expect("DescribeExecution");
    // moto cannot run the Lambda tasks: the execution fails, and --wait says what Step Functions says.
    assert_eq!(described.status().as_str(), "FAILED");
    assert_eq!(doc["status"], described.status().as_str());
    if let Some(error) = described.error() {
        assert_eq!(doc["error"], error);
    }
    assert!(
        doc["error"].is_string() && doc["cause"].is_string(),
        "{doc}"
    );
    let name = described.name().unwrap();
    assert_eq!(doc["name"], name);
    assert_name_shape(name, &format!("{prefix}-openai_api_key"));
    // Refused before promote (StagePending failed) or failed: never "rotated" nor "rolled back".
    assert!([1, 3].contains(&started.out.code), "{}", started.out.show());

    // The input: who, why, which secret, and the candidate as KMS ciphertext only.
    let input_text = described.input().unwrap();
    assert!(!input_text.contains(&marker), "{input_text}");
    let input: Value = serde_json::from_str(input_text).unwrap();
    let fields: BTreeSet<&str> = input
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "action",
            "secret_id",
            "candidate_ciphertext",
            "requested_by",
            "reason"
        ]),
        "{input}"
    );
    assert_eq!(input["action"], "rotate");
    assert_eq!(input["secret_id"], id.as_str());
    assert_eq!(input["requested_by"], "github:alice");
    assert_eq!(input["reason"], "r");
    let (plain, key_used, sealed_for) = rt
        .block_on(clients.decrypt_candidate(input["candidate_ciphertext"].as_str().unwrap(), &id));
    assert_eq!(plain, marker);
    assert_eq!(key_used, key_arn);
    assert_eq!(
        sealed_for, name,
        "the candidate is sealed to this execution only"
    );

    // No event of the history carries the value.
    let history = rt.block_on(clients.history(&arn));
    assert!(history.len() >= 3, "{history:?}");
    for (_, _, event) in &history {
        assert!(!event.contains(&marker), "{event}");
    }

    // rotor history --execution-arn renders GetExecutionHistory like local history.
    let rendered = rotor.aws(&["history", "--execution-arn", &arn, "--json"]);
    rendered.expect_code(0);
    assert!(!rendered.stdout.contains(&marker));
    let rendered = rendered.json();
    assert_eq!(rendered["executionArn"], arn.as_str());
    let events = rendered["events"].as_array().unwrap();
    let ids: Vec<(i64, String)> = events
        .iter()
        .map(|e| {
            (
                e["id"].as_i64().unwrap(),
                e["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(i64, String)> = history
        .iter()
        .map(|(id, ty, _)| (*id, ty.clone()))
        .collect();
    assert_eq!(ids, expected);
    for e in events {
        let at = e["timestamp"]
            .as_str()
            .unwrap_or_else(|| panic!("timestamp is not a string: {e}"));
        chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|err| panic!("{at}: {err}"));
        assert!(
            e.as_object()
                .unwrap()
                .keys()
                .any(|k| k.ends_with("EventDetails"))
                || e["type"] == "ExecutionSucceeded",
            "{e}"
        );
    }
    assert_eq!(events[0]["type"], "ExecutionStarted");
    // Fields in the local history's order.
    let first: Vec<&str> = events[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .take(4)
        .collect();
    assert_eq!(first, ["id", "previousEventId", "timestamp", "type"]);
    assert!(events[0]["executionStartedEventDetails"]["input"]
        .as_str()
        .unwrap()
        .contains("candidate_ciphertext"));
    // The exit code follows what the history says, as for rotate.
    let audited_refused = events.iter().any(|e| {
        e["taskScheduledEventDetails"]["parameters"]
            .as_str()
            .is_some_and(|p| p.contains("rotor-audit-log") && p.contains("\"refused\""))
    });
    assert_eq!(
        started.out.code,
        if audited_refused { 3 } else { 1 },
        "{}",
        started.out.show()
    );

    let human = rotor.run(&[
        "history",
        "--backend",
        "aws",
        "--endpoint-url",
        &endpoint(),
        "--execution-arn",
        &arn,
    ]);
    human.expect_code(0);
    assert!(
        human
            .stdout
            .starts_with(&format!("execution {arn} (rotate {id}): FAILED\n")),
        "{}",
        human.show()
    );
    assert_eq!(
        human.stdout.lines().count(),
        1 + history.len(),
        "{}",
        human.show()
    );

    // Without --wait: the ARN, exit 0; another request gets another name.
    let quick = start_with_marker(
        &rotor,
        &id,
        &state_machine,
        &["--kms-key-id", &alias],
        &marker,
    );
    quick.out.expect_code(0);
    assert_eq!(quick.out.stdout.trim(), quick.arn);
    assert_ne!(quick.arn, arn);
    let described = rt
        .block_on(
            clients
                .sfn
                .describe_execution()
                .execution_arn(&quick.arn)
                .send(),
        )
        .expect("DescribeExecution");
    assert!(!described.input().unwrap().contains(&marker));
    assert_name_shape(
        described.name().unwrap(),
        &format!("{prefix}-openai_api_key"),
    );

    // --wait without --json: status in words, the same exit code.
    let words = start_with_marker(
        &rotor,
        &id,
        &state_machine,
        &["--kms-key-id", &alias, "--wait"],
        &marker,
    );
    assert!([1, 3].contains(&words.out.code), "{}", words.out.show());
    assert!(
        words.out.stdout.contains("\nstatus: FAILED\n"),
        "{}",
        words.out.show()
    );
}

/// The operator seals the key with `rotor encrypt` (as ci-rotate: kms:Encrypt under the
/// candidate's context is all it needs), and `rotor start --candidate-ciphertext-env` starts
/// the execution the candidate is sealed for, with that ciphertext as its input. Started again
/// (a replay), Step Functions refuses the name: nothing new runs.
#[test]
fn a_candidate_rotor_encrypt_sealed_starts_its_own_execution_once() {
    let rotor = Rotor::new("aws-encrypt");
    let rt = runtime();
    let clients = rt.block_on(Clients::new());
    let state_machine = rt.block_on(clients.rotation_state_machine());
    let (key_arn, alias) = rt.block_on(clients.key_with_alias());
    let prefix = format!("en-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let id = format!("{prefix}/openai_api_key");
    create_vendor_secret(&rotor, &id, "sk-initial", "http://127.0.0.1:9/unused");
    let marker = format!("rotor-marker-{}", uuid::Uuid::new_v4().simple());

    // "encrypt" runs as ci-rotate (Rotor::aws_env).
    let out = rotor.aws_env_stdin(
        &[
            "encrypt",
            "--kms-key-id",
            &alias,
            "--secret",
            &id,
            "--valid-for",
            "2h",
        ],
        &[],
        Some(marker.as_bytes()),
    );
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(!out.stdout.contains(&marker) && !out.stderr.contains(&marker));
    let text = out.stdout.trim().to_string();
    let sealed = rotor_core::candidate::Sealed::parse(&text).unwrap();
    let ahead = sealed.not_after - chrono::Utc::now();
    assert!(ahead > chrono::Duration::minutes(119) && ahead <= chrono::Duration::hours(2));

    let start_why = |env_value: &str, reason: &str| {
        rotor.aws_env(
            &[
                "start",
                "--secret",
                &id,
                "--candidate-ciphertext-env",
                "CT",
                "--requested-by",
                "github:alice",
                "--reason",
                reason,
                "--state-machine",
                &state_machine,
                "--json",
            ],
            &[("CT", env_value)],
        )
    };
    let start = |env_value: &str| start_why(env_value, "sealed ahead");
    let first = start(&text);
    assert_eq!(first.code, 0, "{}", first.show());
    let doc = first.json();
    assert_eq!(doc["name"], sealed.execution.as_str(), "{doc}");
    let arn = doc["executionArn"].as_str().unwrap().to_string();
    let input: Value = serde_json::from_str(
        rt.block_on(clients.sfn.describe_execution().execution_arn(&arn).send())
            .unwrap()
            .input()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(input["candidate_ciphertext"], text.as_str());
    let (plain, key_used, sealed_for) = rt.block_on(clients.decrypt_candidate(&text, &id));
    assert_eq!(
        (plain.as_str(), key_used.as_str()),
        (marker.as_str(), key_arn.as_str())
    );
    assert_eq!(sealed_for, sealed.execution);

    // The replay: the same candidate in another request. Step Functions refuses the name.
    let again = start_why(&text, "a replay");
    assert_ne!(again.code, 0, "{}", again.show());
    assert!(
        again.stderr.contains("ExecutionAlreadyExists"),
        "{}",
        again.show()
    );
    // The very same request while it runs is the same execution (Step Functions' idempotent
    // start): no second one either.
    let same = start(&text);
    if same.code == 0 {
        assert_eq!(same.json()["executionArn"], arn.as_str(), "{}", same.show());
    } else {
        assert!(
            same.stderr.contains("ExecutionAlreadyExists"),
            "{}",
            same.show()
        );
    }
    let listed = rt
        .block_on(
            clients
                .sfn
                .list_executions()
                .state_machine_arn(&state_machine)
                .send(),
        )
        .unwrap();
    assert_eq!(
        listed
            .executions()
            .iter()
            .filter(|x| x.name() == sealed.execution)
            .count(),
        1
    );
    // Not a candidate, or expired: refused before anything starts.
    for (bad, says) in [
        ("sk-plain-value", "not a rotor candidate"),
        (&sealed_expired(&sealed) as &str, "expired at"),
    ] {
        let out = start(bad);
        assert_eq!(out.code, 2, "{}", out.show());
        assert!(out.stderr.contains(says), "{}", out.show());
        assert!(
            out.stderr.contains("--candidate-ciphertext-env"),
            "{}",
            out.show()
        );
    }
}

/// `sealed` with a deadline that has passed (refused by rotor start before KMS is asked).
fn sealed_expired(sealed: &rotor_core::candidate::Sealed) -> String {
    let mut s = sealed.clone();
    s.not_after = chrono::Utc::now() - chrono::Duration::minutes(1);
    s.encode()
}

#[test]
fn start_finds_the_key_the_secret_names_else_the_default_alias() {
    let rotor = Rotor::new("aws-start-keys");
    let rt = runtime();
    let clients = rt.block_on(Clients::new());
    let state_machine = rt.block_on(clients.rotation_state_machine());
    let marker = format!("rotor-marker-{}", uuid::Uuid::new_v4().simple());

    // A secret encrypted under its own KMS key: the candidate goes under that key.
    let (own_key, _) = rt.block_on(clients.key_with_alias());
    let id = format!("{}/own_key", unique("cli-start-own"));
    rt.block_on(
        clients
            .sm
            .create_secret()
            .name(&id)
            .secret_string("sk-initial")
            .kms_key_id(&own_key)
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("rotor:kind")
                    .value("vendor-api-key")
                    .build(),
            )
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("rotor:probe")
                    .value("openai")
                    .build(),
            )
            .send(),
    )
    .expect("CreateSecret");
    let started = start_with_marker(&rotor, &id, &state_machine, &[], &marker);
    started.out.expect_code(0);
    let input = rt
        .block_on(
            clients
                .sfn
                .describe_execution()
                .execution_arn(&started.arn)
                .send(),
        )
        .unwrap()
        .input()
        .unwrap()
        .to_string();
    let input: Value = serde_json::from_str(&input).unwrap();
    let (plain, used, _) = rt
        .block_on(clients.decrypt_candidate(input["candidate_ciphertext"].as_str().unwrap(), &id));
    assert_eq!(plain, marker);
    assert_eq!(used, own_key);

    // A secret on the default key: alias/rotor-candidates (created here unless another run did).
    let created = rt.block_on(clients.kms.create_key().send()).unwrap();
    let fresh = created.key_metadata().unwrap().arn().unwrap().to_string();
    let _ = rt.block_on(
        clients
            .kms
            .create_alias()
            .alias_name("alias/rotor-candidates")
            .target_key_id(&fresh)
            .send(),
    );
    let aliases = rt.block_on(clients.kms.list_aliases().send()).unwrap();
    let target = aliases
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/rotor-candidates"))
        .and_then(|a| a.target_key_id())
        .expect("alias/rotor-candidates exists")
        .to_string();
    let id = format!("{}/default_key", unique("cli-start-default"));
    create_vendor_secret(&rotor, &id, "sk-initial", "http://127.0.0.1:9/unused");
    let started = start_with_marker(&rotor, &id, &state_machine, &["--json"], &marker);
    started.out.expect_code(0);
    assert_eq!(started.out.json()["status"], "RUNNING");
    let input = rt
        .block_on(
            clients
                .sfn
                .describe_execution()
                .execution_arn(&started.arn)
                .send(),
        )
        .unwrap()
        .input()
        .unwrap()
        .to_string();
    let input: Value = serde_json::from_str(&input).unwrap();
    let (plain, used, _) = rt
        .block_on(clients.decrypt_candidate(input["candidate_ciphertext"].as_str().unwrap(), &id));
    assert_eq!(plain, marker);
    assert!(
        used.ends_with(&target),
        "{used} is not the key of alias/rotor-candidates ({target})"
    );
}

#[test]
fn start_refuses_before_starting_anything() {
    let rotor = Rotor::new("aws-start-refused");
    let rt = runtime();
    let clients = rt.block_on(Clients::new());
    let state_machine = rt.block_on(clients.rotation_state_machine());
    let id = format!("{}/openai_api_key", unique("cli-start-refused"));
    create_vendor_secret(&rotor, &id, "sk-initial", "http://127.0.0.1:9/unused");
    let marker = format!("rotor-marker-{}", uuid::Uuid::new_v4().simple());

    // No state machine: both ways to give one are named.
    let out = rotor.aws_env(
        &[
            "start",
            "--reason",
            "test",
            "--secret",
            &id,
            "--candidate-env",
            "CAND",
        ],
        &[("CAND", &marker)],
    );
    out.expect_code(2);
    assert!(
        out.stderr.contains("--state-machine") && out.stderr.contains("ROTOR_STATE_MACHINE_ARN"),
        "{}",
        out.show()
    );

    // A KMS key that does not exist: named.
    let missing = format!("alias/{}", unique("rotor-cli-missing"));
    let out = start_with_marker(
        &rotor,
        &id,
        &state_machine,
        &["--kms-key-id", &missing],
        &marker,
    )
    .out;
    out.expect_code(2);
    assert!(out.stderr.contains(&missing), "{}", out.show());

    // The candidate variable unset or empty: named, never a value.
    for env in [vec![], vec![("CAND", "")]] {
        let out = rotor.aws_env(
            &[
                "start",
                "--reason",
                "test",
                "--secret",
                &id,
                "--candidate-env",
                "CAND",
                "--state-machine",
                &state_machine,
            ],
            &env,
        );
        out.expect_code(2);
        assert!(out.stderr.contains("CAND"), "{}", out.show());
    }
    // A vendor key without a candidate; a rollback with one.
    let out = rotor.aws_env(
        &["start", "--reason", "test", "--secret", &id],
        &[("ROTOR_STATE_MACHINE_ARN", &state_machine)],
    );
    out.expect_code(2);
    assert!(out.stderr.contains("--candidate-env"), "{}", out.show());
    let out = rotor.aws_env(
        &[
            "start",
            "--reason",
            "test",
            "--secret",
            &id,
            "--action",
            "rollback",
            "--candidate-env",
            "CAND",
            "--state-machine",
            &state_machine,
        ],
        &[("CAND", &marker)],
    );
    out.expect_code(2);
    // On the local backend, start is not available.
    let out = rotor.run_env(
        &[
            "start",
            "--reason",
            "test",
            "--secret",
            &id,
            "--candidate-env",
            "CAND",
            "--state-machine",
            &state_machine,
        ],
        &[("CAND", &marker)],
    );
    out.expect_code(2);
    assert!(out.stderr.contains("--backend aws"), "{}", out.show());

    // None of these started an execution.
    let listed = rt
        .block_on(
            clients
                .sfn
                .list_executions()
                .state_machine_arn(&state_machine)
                .send(),
        )
        .unwrap();
    assert!(listed.executions().is_empty(), "{listed:?}");
}

/// `rotor recover` on the aws backend, when no execution ran here: the deployed state machine's
/// execution that staged AWSPENDING is found (its version id derives from its ARN). Running, it
/// is left alone; stopped, it is redriven. moto 5 has no RedriveExecution, so on moto the
/// redrive itself is refused by moto; the test checks rotor found the execution and asked.
#[test]
fn recover_finds_the_deployed_execution_that_staged_awspending() {
    let rt = runtime();
    let clients = rt.block_on(Clients::new());
    let rotor = Rotor::new("recover-sfn");
    let machine = |definition: serde_json::Value| {
        rt.block_on(async {
            clients
                .sfn
                .create_state_machine()
                .name(unique("rotor-cli-recover"))
                .definition(definition.to_string())
                .role_arn(ROLE_ARN)
                .send()
                .await
                .expect("CreateStateMachine")
                .state_machine_arn()
                .to_string()
        })
    };
    let start = |sm: &str| {
        rt.block_on(async {
            clients
                .sfn
                .start_execution()
                .state_machine_arn(sm)
                .name(unique("x"))
                .input("{}")
                .send()
                .await
                .expect("StartExecution")
                .execution_arn()
                .to_string()
        })
    };
    let stage = |id: &str, arn: &str| {
        rt.block_on(async {
            clients
                .sm
                .put_secret_value()
                .secret_id(id)
                .client_request_token(rotor_core::handlers::token_for(arn))
                .secret_string("staged-by-the-deployment")
                .version_stages("AWSPENDING")
                .send()
                .await
                .expect("PutSecretValue AWSPENDING")
        })
    };
    let value = rotor.file("v", b"first");
    let create = |id: &str| {
        rotor
            .aws(&[
                "secret",
                "create",
                id,
                "--kind",
                "generated",
                "--value-file",
                &value,
            ])
            .expect_code(0);
    };

    // Running on Step Functions: wait for it, nothing changed.
    let waiting = machine(
        serde_json::json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 120, "End": true}}}),
    );
    let running = start(&waiting);
    let id = unique("cli-recover-running");
    create(&id);
    stage(&id, &running);
    let out = rotor.aws(&[
        "recover",
        "--secret",
        &id,
        "--state-machine",
        &waiting,
        "--reason",
        "test",
    ]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stderr.contains(&running) && out.stderr.contains("RUNNING"),
        "{}",
        out.show()
    );
    assert!(
        version_with(&rotor.show(&id), "AWSPENDING").is_some(),
        "left alone"
    );

    // Stopped (FAILED): redriven (on moto: asked for, and moto's refusal reported).
    let failing = machine(
        serde_json::json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom"}}}),
    );
    let failed = start(&failing);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rt
        .block_on(
            clients
                .sfn
                .describe_execution()
                .execution_arn(&failed)
                .send(),
        )
        .unwrap()
        .status()
        .as_str()
        == "RUNNING"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the failing execution never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let id = unique("cli-recover-failed");
    create(&id);
    stage(&id, &failed);
    let out = rotor.aws(&[
        "recover",
        "--secret",
        &id,
        "--state-machine",
        &failing,
        "--reason",
        "test",
    ]);
    assert!(
        out.stdout.contains(&failed) || out.stderr.contains(&failed),
        "{}",
        out.show()
    );
    assert!(
        (out.code == 0 && out.stdout.contains("redriven"))
            || out.stderr.contains("RedriveExecution"),
        "{}",
        out.show()
    );

    // No execution of the state machine staged it: rotor abort is the way.
    let id = unique("cli-recover-unknown");
    create(&id);
    stage(
        &id,
        "arn:aws:states:us-east-1:123456789012:execution:elsewhere:gone",
    );
    let out = rotor.aws(&[
        "recover",
        "--secret",
        &id,
        "--state-machine",
        &failing,
        "--reason",
        "test",
    ]);
    assert_eq!(out.code, 2, "{}", out.show());
    assert!(
        out.stderr.contains("rotor abort --secret"),
        "{}",
        out.show()
    );
}

/// A vendor rotation on the aws backend (in-process state machine over moto, every AWS call
/// through a loopback proxy) killed (SIGKILL) at each of its AWS calls in turn — inside every
/// Task between its calls, and before the run, during preflight — then `rotor recover`: the
/// secret ends on its old or its new value, consistent, with no AWSPENDING, and one audit
/// record for the execution when one was started.
#[test]
fn a_rotation_killed_at_any_aws_call_recovers_on_moto() {
    use rotor_tests::faults::{FaultPlan, FaultProxy};
    use std::os::unix::process::ExitStatusExt;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::sync::Arc;
    let standin = StandIn::start();
    let rotor = Rotor::new("kill-moto");
    let proxy = FaultProxy::start(FaultPlan::none());
    let victim = Arc::new(AtomicU32::new(0));
    let kill_at = Arc::new(AtomicU64::new(u64::MAX));
    {
        let (victim, kill_at) = (victim.clone(), kill_at.clone());
        proxy.set_hook(Box::new(move |n, _op| {
            if n == kill_at.load(Ordering::SeqCst) {
                let pid = victim.load(Ordering::SeqCst);
                if pid != 0 {
                    // SAFETY: signalling the rotor process this test started.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }));
    }
    let store = rotor.store.to_string_lossy().into_owned();
    let url = proxy.url();
    let rt = runtime();
    let (_, alias) = rt.block_on(async { Clients::new().await.key_with_alias().await });
    // Runs a rotation through the proxy; answers whether it was killed.
    let rotate = |id: &str, candidate: &str| -> bool {
        let file = rotor.file(&unique("candidate"), candidate.as_bytes());
        let args = [
            "--backend",
            "aws",
            "--endpoint-url",
            &url,
            "--store",
            &store,
            "--clock",
            "virtual",
            "--kms-key-id",
            &alias,
            "rotate",
            "--secret",
            id,
            "--candidate-file",
            &file,
            "--reason",
            "kill test",
            "--json",
        ];
        let child = rotor
            .command(&args, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        victim.store(child.id(), Ordering::SeqCst);
        let out = child.wait_with_output().unwrap();
        victim.store(0, Ordering::SeqCst);
        let killed = out.status.signal() == Some(libc::SIGKILL);
        assert!(
            killed || out.status.code() == Some(0),
            "rotate exited {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        killed
    };
    let reveal = |id: &str| {
        let out = rotor.aws(&["secret", "get", id, "--stage", "AWSCURRENT", "--reveal"]);
        out.expect_code(0);
        out.stdout.trim_end().to_string()
    };
    let audited = |id: &str| -> usize {
        let out = rotor.aws(&["audit", "--json"]);
        out.expect_code(0);
        out.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["secret_id"] == id)
            .count()
    };

    // A reference rotation counts the calls.
    let id = unique("cli-kill-ref");
    create_vendor_secret(
        &rotor,
        &id,
        &standin.issue_key("openai"),
        &standin.probe_url("openai"),
    );
    let before = proxy.counts().requests;
    assert!(!rotate(&id, &standin.issue_key("openai")));
    let calls = proxy.counts().requests - before;
    assert!(calls > 10, "{calls} AWS calls");

    let (mut rotated, mut old, mut before_run) = (0, 0, 0);
    for i in 1..=calls {
        let id = unique("cli-kill");
        let first = standin.issue_key("openai");
        create_vendor_secret(&rotor, &id, &first, &standin.probe_url("openai"));
        let candidate = standin.issue_key("openai");
        kill_at.store(proxy.counts().requests + i, Ordering::SeqCst);
        let killed = rotate(&id, &candidate);
        kill_at.store(u64::MAX, Ordering::SeqCst);
        assert!(killed, "call {i} of {calls}: the run was not killed");
        let rec = rotor.aws(&[
            "--clock",
            "virtual",
            "recover",
            "--secret",
            &id,
            "--reason",
            "after the kill",
        ]);
        assert!([0, 3, 4].contains(&rec.code), "call {i}: {}", rec.show());
        let show = rotor.show(&id);
        assert!(
            version_with(&show, "AWSPENDING").is_none(),
            "call {i}: AWSPENDING left: {show}"
        );
        assert!(
            version_with(&show, "AWSCURRENT").is_some(),
            "call {i}: {show}"
        );
        let now = reveal(&id);
        let ran = rotor
            .aws(&["history", "--json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["secret_id"] == id.as_str());
        match (now == candidate, now == first, ran) {
            (true, _, true) => rotated += 1,
            (_, true, true) => old += 1,
            (_, true, false) => before_run += 1,
            _ => panic!("call {i}: AWSCURRENT is neither the old nor the new value"),
        }
        assert_eq!(
            audited(&id),
            ran as usize,
            "call {i}: one audit record per execution"
        );
    }
    println!(
        "kill at every AWS call (moto): {calls} kills: {rotated} rotated, {old} on the old value, {before_run} before the run started; invariant violations 0"
    );
}

/// With `--lambda-binaries` on aws, the audit-log function writes its record to CloudWatch,
/// not to this machine's cache: rotor keeps it there too, so `rotor audit` (and a later
/// `rotor rollback`, which plans from the trail) sees the rotation.
#[test]
fn a_rotation_through_the_function_binaries_is_audited_in_the_local_cache() {
    let rotor = Rotor::new("aws-binaries-audit");
    let id = format!("{}/session_secret", unique("cli-binaries"));
    let initial = rotor.file("initial", b"0123456789abcdef0123456789abcdef");
    rotor
        .aws(&[
            "secret",
            "create",
            &id,
            "--kind",
            "generated",
            "--value-file",
            &initial,
        ])
        .expect_code(0);
    let dir = lambda_binaries();
    let out = rotor.aws(&[
        "--clock",
        "virtual",
        "rotate",
        "--secret",
        &id,
        "--requested-by",
        "test:binaries",
        "--reason",
        "through the binaries",
        "--lambda-binaries",
        dir.to_str().unwrap(),
        "--json",
    ]);
    out.expect_code(0);
    let doc = out.json();
    let audit = rotor
        .aws(&["audit", "--json", "--secret", &id])
        .expect_code(0)
        .json();
    let records = audit.as_array().unwrap();
    assert_eq!(records.len(), 1, "{audit}");
    assert_eq!(records[0]["execution_id"], doc["execution_id"]);
    assert_eq!(records[0]["outcome"], "rotated");
    assert_eq!(records[0]["requested_by"], "test:binaries");
}
