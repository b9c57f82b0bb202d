//! The GitHub Actions workflows in `.github/workflows/`: zizmor and actionlint (with shellcheck)
//! report nothing, their security contracts hold, and the rotate, reusable rotate and rollback
//! workflows' `run:` steps, run as GitHub would run them (the environment their `env:` blocks
//! set, `${{ }}` replaced by test values, `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`), start the
//! right execution on moto's Step Functions and never show the candidate; the deploy
//! workflow's plan and apply jobs deploy the development root to a private moto with the state
//! in its S3.
//!
//! `uses:` steps are not run: the checkout is this work tree (for deploy, a copy of it), the
//! credentials are moto's (the AWS endpoint points at moto) and the step with id
//! `install-rotor` is replaced by putting the `rotor` built for this test first on PATH.
//!
//! Needs what `scripts/test` provides (`ROTOR_MOTO_ENDPOINT`, `ROTOR_ZIZMOR`,
//! `ROTOR_ACTIONLINT`, `ROTOR_SHELLCHECK`, `ROTOR_TERRAFORM`, `TF_CLI_CONFIG_FILE`, `.venv`
//! with moto); without them the tests fail:
//! `scripts/test -p rotor-cli --test github_workflows`.

mod common;

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use common::TempDir;
use serde_json::Value as Json;
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const REGION: &str = "us-east-1";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/sfn";
const WORKFLOWS: [&str; 5] = [
    "ci.yml",
    "rotate-secret.yml",
    "rotate-secret-reusable.yml",
    "rollback-secret.yml",
    "deploy.yml",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn workflows_dir() -> PathBuf {
    repo_root().join(".github/workflows")
}

fn tool(var: &str) -> String {
    match std::env::var(var) {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!("{var} is not set: run scripts/test (scripts/test -p rotor-cli --test github_workflows), which installs it"),
    }
}

fn endpoint() -> String {
    tool("ROTOR_MOTO_ENDPOINT")
        .trim_end_matches('/')
        .to_string()
}

fn load(name: &str) -> Value {
    let path = workflows_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

// ------------------------------------------------------------------ static checkers

#[test]
fn zizmor_reports_no_findings() {
    let out = Command::new(tool("ROTOR_ZIZMOR"))
        .arg("--offline")
        .arg("--no-progress")
        .arg(workflows_dir())
        .stdin(Stdio::null())
        .output()
        .expect("zizmor runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "zizmor found something:\n{text}"
    );
    assert!(text.contains("No findings to report"), "{text}");
    for name in WORKFLOWS {
        assert!(text.contains(name), "zizmor did not audit {name}:\n{text}");
    }
}

fn actionlint(dir: &Path, files: &[PathBuf]) -> (i32, String) {
    let out = Command::new(tool("ROTOR_ACTIONLINT"))
        .arg("-no-color")
        .arg("-shellcheck")
        .arg(tool("ROTOR_SHELLCHECK"))
        .args(files)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("actionlint runs");
    (
        out.status.code().expect("actionlint exited"),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn actionlint_with_shellcheck_reports_nothing() {
    let files: Vec<PathBuf> = WORKFLOWS.iter().map(|n| workflows_dir().join(n)).collect();
    let (code, text) = actionlint(&repo_root(), &files);
    assert_eq!(code, 0, "actionlint found something:\n{text}");
    assert!(text.trim().is_empty(), "{text}");

    // shellcheck really is active: an unquoted expansion in a run: step is reported.
    let tmp = TempDir::new("actionlint");
    let wf = tmp.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    let bad = wf.join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $1 $HOME\n",
    )
    .unwrap();
    let (code, text) = actionlint(tmp.path(), &[bad]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("shellcheck"),
        "shellcheck is not active in actionlint:\n{text}"
    );
}

// ------------------------------------------------------------------ contracts

/// Every `uses:` in a document, every `run:` and every key path, for the contract checks.
fn walk<'a>(v: &'a Value, path: &str, out: &mut Vec<(String, &'a Value)>) {
    out.push((path.to_string(), v));
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let k = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                walk(child, &format!("{path}.{k}"), out);
            }
        }
        Value::Sequence(s) => {
            for (i, child) in s.iter().enumerate() {
                walk(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn workflows_keep_their_security_contracts() {
    let mut groups = BTreeMap::new();
    for name in WORKFLOWS {
        let doc = load(name);
        let text = std::fs::read_to_string(workflows_dir().join(name)).unwrap();
        assert!(!text.contains("pull_request_target"), "{name}");
        assert!(
            !text.contains("github.event.inputs"),
            "{name}: use inputs.*"
        );
        assert_eq!(
            doc["permissions"],
            serde_yaml::from_str::<Value>("{}").unwrap(),
            "{name}: top-level permissions: {{}}"
        );
        let mut nodes = Vec::new();
        walk(&doc, "", &mut nodes);
        for (path, v) in &nodes {
            if path.ends_with(".uses") {
                let uses = v.as_str().unwrap();
                let (_, sha) = uses
                    .split_once('@')
                    .unwrap_or_else(|| panic!("{name}: {uses}"));
                assert!(
                    sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                    "{name}: {uses} is not pinned to a full commit SHA"
                );
            }
            if path.ends_with(".run") {
                assert!(
                    !v.as_str().unwrap().contains("${{"),
                    "{name} {path}: an expression in a script"
                );
            }
            if path.ends_with(".with.persist-credentials") {
                assert_eq!(v.as_bool(), Some(false), "{name}");
            }
        }
        for (job_name, job) in doc["jobs"].as_mapping().unwrap() {
            let job_name = job_name.as_str().unwrap();
            assert!(
                job["permissions"].is_mapping(),
                "{name} {job_name}: job permissions"
            );
            for (scope, level) in job["permissions"].as_mapping().unwrap() {
                let scope = scope.as_str().unwrap();
                assert!(
                    (scope == "contents" && level == "read")
                        || (scope == "id-token" && level == "write"),
                    "{name} {job_name}: {scope}: {level:?}"
                );
            }
            if let Some(group) = job["concurrency"]["group"].as_str() {
                groups.insert(
                    name,
                    (
                        group.to_string(),
                        job["concurrency"]["cancel-in-progress"].clone(),
                    ),
                );
            }
        }
    }
    // rotate, reusable rotate and rollback share one group per secret and environment, and a
    // second run waits rather than cancel the first.
    let group = "rotor-secret-${{ inputs.environment }}-${{ inputs.secret }}";
    for name in [
        "rotate-secret.yml",
        "rotate-secret-reusable.yml",
        "rollback-secret.yml",
    ] {
        assert_eq!(groups[name].0, group, "{name}");
        assert_eq!(groups[name].1, Value::Bool(false), "{name}");
    }

    // The candidate's value is never an input: only secrets carry it, and only into a step's
    // env:. The one candidate input is rotor encrypt's sealed ciphertext, read from env: too.
    for name in [
        "rotate-secret.yml",
        "rotate-secret-reusable.yml",
        "rollback-secret.yml",
    ] {
        let doc = load(name);
        let on = &doc["on"];
        let trigger = if name.contains("reusable") {
            "workflow_call"
        } else {
            "workflow_dispatch"
        };
        let inputs: BTreeSet<&str> = on[trigger]["inputs"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        let expected: BTreeSet<&str> = if name == "rotate-secret.yml" {
            BTreeSet::from(["secret", "environment", "reason", "candidate_ciphertext"])
        } else {
            BTreeSet::from(["secret", "environment", "reason"])
        };
        assert_eq!(inputs, expected, "{name}");
        let text = std::fs::read_to_string(workflows_dir().join(name)).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains("inputs.candidate_ciphertext") && !line.trim_start().starts_with('#') {
                assert_eq!(
                    line.trim(),
                    "CANDIDATE_CIPHERTEXT: ${{ inputs.candidate_ciphertext }}",
                    "{name}:{}: the sealed candidate reaches rotor through env: only",
                    i + 1
                );
            }
        }
        for (i, line) in text.lines().enumerate() {
            if line.contains("secrets.") && !line.trim_start().starts_with('#') {
                assert!(
                    line.trim_start()
                        .starts_with("ROTATION_CANDIDATE: ${{ secrets."),
                    "{name}:{}: {line}",
                    i + 1
                );
            }
        }
    }
    // A job that can get an OIDC token builds nothing: what compiles (build scripts,
    // dependencies) runs in a job without id-token, and the result comes in as an artifact.
    let builds = |job: &Value| {
        job["steps"].as_sequence().unwrap().iter().any(|st| {
            st["run"].as_str().is_some_and(|r| {
                ["cargo ", "scripts/package", "npm ", "make "]
                    .iter()
                    .any(|b| r.contains(b))
            })
        })
    };
    for name in WORKFLOWS {
        let doc = load(name);
        let jobs = doc["jobs"].as_mapping().unwrap();
        for (job_name, job) in jobs {
            let job_name = job_name.as_str().unwrap();
            if job["permissions"]["id-token"].as_str() != Some("write") {
                continue;
            }
            assert!(
                !builds(job),
                "{name} {job_name}: builds in a job with id-token: write"
            );
            let needs: Vec<&str> = match &job["needs"] {
                Value::String(n) => vec![n.as_str()],
                Value::Sequence(ns) => ns.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            let builders: Vec<&str> = needs
                .into_iter()
                .filter(|n| builds(&doc["jobs"][*n]))
                .collect();
            assert!(
                !builders.is_empty(),
                "{name} {job_name}: takes its build from no job"
            );
            for b in builders {
                assert!(
                    doc["jobs"][b]["permissions"]["id-token"].is_null(),
                    "{name} {b}: a build job with id-token"
                );
                let uploads = doc["jobs"][b]["steps"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|st| {
                        st["uses"]
                            .as_str()
                            .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
                    });
                let downloads = job["steps"].as_sequence().unwrap().iter().any(|st| {
                    st["uses"]
                        .as_str()
                        .is_some_and(|u| u.starts_with("actions/download-artifact@"))
                });
                assert!(
                    uploads && downloads,
                    "{name}: {b} -> {job_name} without an artifact"
                );
            }
        }
    }
    // ci-deploy's subject is its own environment, <env>-deploy; the routine jobs run in <env>.
    assert_eq!(
        load("deploy.yml")["jobs"]["apply"]["environment"].as_str(),
        Some("${{ matrix.environment }}-deploy")
    );
    for (name, job) in [
        ("rotate-secret.yml", "rotate"),
        ("rotate-secret-reusable.yml", "rotate"),
        ("rollback-secret.yml", "rollback"),
    ] {
        assert_eq!(
            load(name)["jobs"][job]["environment"].as_str(),
            Some("${{ inputs.environment }}"),
            "{name}"
        );
    }

    // Every Terraform root under infrastructure/environments is deployed by deploy.yml (plan
    // and apply, in order: development, staging, production) and offered by the dispatches.
    let mut roots: Vec<String> = std::fs::read_dir(repo_root().join("infrastructure/environments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    roots.sort();
    assert_eq!(roots, ["development", "production", "staging"]);
    let ordered = ["development", "staging", "production"];
    for job in ["plan", "apply"] {
        let matrix: Vec<String> = load("deploy.yml")["jobs"][job]["strategy"]["matrix"]
            ["environment"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(matrix, ordered, "deploy.yml {job}");
    }
    for name in ["rotate-secret.yml", "rollback-secret.yml"] {
        let options: Vec<String> = load(name)["on"]["workflow_dispatch"]["inputs"]["environment"]
            ["options"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(options, ordered, "{name}");
    }

    // Credentials outlast the longest wait: role-duration-seconds above rotor start's --timeout.
    for name in [
        "rotate-secret.yml",
        "rotate-secret-reusable.yml",
        "rollback-secret.yml",
    ] {
        let text = std::fs::read_to_string(workflows_dir().join(name)).unwrap();
        let timeout: u64 = text
            .split("--timeout ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no --timeout"));
        let doc = load(name);
        let mut nodes = Vec::new();
        walk(&doc, "", &mut nodes);
        let durations: Vec<u64> = nodes
            .iter()
            .filter(|(p, _)| p.ends_with(".with.role-duration-seconds"))
            .map(|(_, v)| v.as_u64().unwrap())
            .collect();
        assert!(
            !durations.is_empty(),
            "{name}: no role-duration-seconds (1 h by default)"
        );
        for d in durations {
            assert!(
                d >= timeout + 600 && d <= 10800,
                "{name}: {d} s against --timeout {timeout}"
            );
        }
    }
    assert_eq!(
        load("rotate-secret.yml")["on"]["workflow_dispatch"]["inputs"]["secret"]["type"],
        "choice"
    );
    assert_eq!(
        load("rotate-secret.yml")["on"]["workflow_dispatch"]["inputs"]["environment"]["type"],
        "choice"
    );
    assert!(
        load("rotate-secret-reusable.yml")["on"]["workflow_call"]["secrets"]["candidate"]
            ["required"]
            == true
    );
}

// ------------------------------------------------------------------ running the jobs

/// `${{ expr }}` replaced by `ctx[expr]`; `steps.<id>.outputs.<name>` from the steps so far
/// (empty when absent, as on GitHub). Any other expression is a test failure: the test must
/// know every value a workflow reads.
fn substitute(
    text: &str,
    ctx: &BTreeMap<String, String>,
    outputs: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed expression in {text}"))
            + start;
        let expr = rest[start + 3..end].trim();
        let value = if let Some(path) = expr.strip_prefix("steps.") {
            let (id, name) = path
                .split_once(".outputs.")
                .unwrap_or_else(|| panic!("{expr}"));
            outputs
                .get(id)
                .and_then(|o| o.get(name))
                .cloned()
                .unwrap_or_default()
        } else {
            ctx.get(expr)
                .cloned()
                .unwrap_or_else(|| panic!("the test has no value for ${{{{ {expr} }}}}"))
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What running a job's steps did.
struct JobRun {
    summary: String,
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    /// (step name, exit code, stdout + stderr) of each run: step, in order.
    steps: Vec<(String, i32, String)>,
}

impl JobRun {
    fn log(&self) -> String {
        self.steps
            .iter()
            .map(|(n, c, o)| format!("--- {n} (exit {c})\n{o}"))
            .collect()
    }
}

/// Reads `name=value` and `name<<DELIM ... DELIM` lines of a `$GITHUB_OUTPUT` file.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((k, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(k.to_string(), value.join("\n"));
        } else if let Some((k, v)) = line.split_once('=') {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}

/// Where and how [`run_job_with`] runs a job's steps.
struct JobOptions {
    /// The checkout (the steps' working directory and `GITHUB_WORKSPACE`).
    checkout: PathBuf,
    /// The AWS endpoint the steps' SDKs and CLIs talk to.
    endpoint: String,
    /// `run:` steps (by name) that are replaced by what the test prepared.
    skip: Vec<&'static str>,
    /// More environment, as the runner or an earlier `uses:` step would set it.
    env: Vec<(String, String)>,
}

/// Runs the `run:` steps of `job` in `workflow` in order, as GitHub's runner would with
/// `bash -e`, until one fails: in this work tree, against the shared moto.
fn run_job(workflow: &str, job: &str, ctx: &BTreeMap<String, String>, tmp: &Path) -> JobRun {
    let options = JobOptions {
        checkout: repo_root(),
        endpoint: endpoint(),
        skip: Vec::new(),
        env: Vec::new(),
    };
    run_job_with(workflow, job, ctx, tmp, &options)
}

/// [`run_job`] with [`JobOptions`].
fn run_job_with(
    workflow: &str,
    job: &str,
    ctx: &BTreeMap<String, String>,
    tmp: &Path,
    options: &JobOptions,
) -> JobRun {
    let doc = load(workflow);
    let job_doc = &doc["jobs"][job];
    assert!(job_doc.is_mapping(), "{workflow} has no job {job}");
    let rotor = PathBuf::from(env!("CARGO_BIN_EXE_rotor"));
    let path = format!(
        "{}:{}",
        rotor.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let runner_temp = tmp.join("runner-temp");
    std::fs::create_dir_all(&runner_temp).unwrap();
    let summary = tmp.join("step-summary.md");
    std::fs::write(&summary, "").unwrap();
    let mut run = JobRun {
        summary: String::new(),
        outputs: BTreeMap::new(),
        steps: Vec::new(),
    };
    for (i, step) in job_doc["steps"].as_sequence().unwrap().iter().enumerate() {
        assert!(
            step.get("if").is_none(),
            "{workflow}: step {i} has an if: the test does not evaluate"
        );
        let id = step["id"].as_str().unwrap_or_default().to_string();
        let name = step["name"].as_str().unwrap_or(&id).to_string();
        if step.get("uses").is_some()
            || id == "install-rotor"
            || options.skip.contains(&name.as_str())
        {
            continue;
        }
        let script = step["run"]
            .as_str()
            .unwrap_or_else(|| panic!("{workflow}: step {name} neither uses nor runs"));
        let output_file = tmp.join(format!("output-{i}"));
        std::fs::write(&output_file, "").unwrap();
        let script_file = tmp.join(format!("step-{i}.sh"));
        std::fs::write(&script_file, script).unwrap();
        let mut c = Command::new("bash");
        c.arg("-e")
            .arg(&script_file)
            .env_clear()
            .current_dir(&options.checkout)
            .stdin(Stdio::null());
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        // The rotate and rollback jobs run as ci-rotate (the role their configure-aws-credentials
        // step assumes): their calls are signed with its key for the permission check.
        let key = if workflow.starts_with("deploy") {
            rotor_tests::principals::HARNESS_KEY
        } else {
            rotor_tests::principals::CI_ROTATE_KEY
        };
        for (k, v) in [
            ("PATH", path.as_str()),
            ("HOME", home.as_str()),
            ("CI", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("AWS_ENDPOINT_URL", &options.endpoint),
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            c.env(k, v);
        }
        c.env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_ENV", tmp.join("github-env"))
            .env("GITHUB_PATH", tmp.join("github-path"))
            .env("GITHUB_WORKSPACE", &options.checkout)
            .env("RUNNER_TEMP", &runner_temp)
            .env("ROTOR_STORE", tmp.join("rotor-store"));
        for (k, v) in &options.env {
            c.env(k, v);
        }
        for scope in [&doc["env"], &job_doc["env"], &step["env"]] {
            if let Some(m) = scope.as_mapping() {
                for (k, v) in m {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap().trim().to_string(),
                    };
                    c.env(k.as_str().unwrap(), substitute(&v, ctx, &run.outputs));
                }
            }
        }
        let out = c.output().expect("bash runs");
        let code = out.status.code().unwrap_or(-1);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !id.is_empty() {
            run.outputs.insert(
                id.clone(),
                parse_outputs(&std::fs::read_to_string(&output_file).unwrap()),
            );
        }
        run.steps.push((name, code, text));
        if code != 0 {
            break;
        }
    }
    run.summary = std::fs::read_to_string(&summary).unwrap();
    run
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Moto {
    sfn: aws_sdk_sfn::Client,
    kms: aws_sdk_kms::Client,
}

impl Moto {
    async fn new() -> Moto {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "github-workflows",
            ))
            .load()
            .await;
        Moto {
            sfn: aws_sdk_sfn::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
        }
    }

    async fn state_machine(&self) -> String {
        let definition = rotor_runner::render_definition(
            rotor_runner::load_rotation_definition(),
            &rotor_runner::local_arns(),
        )
        .unwrap();
        self.sfn
            .create_state_machine()
            .name(unique("rotor-gh"))
            .definition(definition)
            .role_arn(ROLE_ARN)
            .send()
            .await
            .expect("CreateStateMachine")
            .state_machine_arn()
            .to_string()
    }

    async fn key_alias(&self) -> String {
        let key = self.kms.create_key().send().await.expect("CreateKey");
        let alias = format!("alias/{}", unique("rotor-gh"));
        self.kms
            .create_alias()
            .alias_name(&alias)
            .target_key_id(key.key_metadata().unwrap().key_id())
            .send()
            .await
            .expect("CreateAlias");
        alias
    }

    /// The plaintext of a sealed candidate, decrypted under its context, and the execution
    /// name it is sealed for.
    async fn decrypt(&self, text: &str, secret: &str) -> (String, String) {
        let sealed = rotor_core::candidate::Sealed::parse(text).expect("a sealed candidate");
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(
                sealed.ciphertext.clone(),
            ))
            .set_encryption_context(Some(sealed.context(secret).into_iter().collect()))
            .send()
            .await
            .expect("the candidate decrypts under {SecretId, Execution, NotAfter}");
        (
            String::from_utf8(out.plaintext.unwrap().into_inner()).unwrap(),
            sealed.execution,
        )
    }

    /// (name, input, status) of an execution.
    async fn execution(&self, arn: &str) -> (String, Json, String) {
        let d = self
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("DescribeExecution");
        (
            d.name().unwrap().to_string(),
            serde_json::from_str(d.input().unwrap()).unwrap(),
            d.status().as_str().to_string(),
        )
    }
}

/// `rotor --backend aws` against moto, signed with `access_key` (moto's test secret), nothing
/// of the caller's AWS or rotor environment.
fn rotor_on_moto(access_key: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rotor"));
    c.args([
        "--backend",
        "aws",
        "--endpoint-url",
        &endpoint(),
        "--region",
        REGION,
    ])
    .env("AWS_ACCESS_KEY_ID", access_key)
    .env("AWS_SECRET_ACCESS_KEY", "testing")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .env_remove("AWS_ENDPOINT_URL")
    .env_remove("ROTOR_STORE")
    .env_remove("ROTOR_KMS_KEY_ID");
    c
}

/// A vendor secret in moto, through `rotor secret create`.
fn create_secret(id: &str, tmp: &Path) {
    let value = tmp.join("initial");
    std::fs::write(&value, "sk-initial-value\n").unwrap();
    let out = rotor_on_moto("testing")
        .arg("--store")
        .arg(tmp.join("rotor-store"))
        .args([
            "secret",
            "create",
            id,
            "--kind",
            "vendor-api-key",
            "--probe",
            "openai",
        ])
        .args(["--tag", "rotor:probe-url=http://127.0.0.1:9/unused"])
        .args([
            "--tag",
            "rotor:wait-propagation-seconds=0",
            "--tag",
            "rotor:wait-consumers-seconds=0",
        ])
        .arg("--value-file")
        .arg(&value)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rotor secret create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test's values for every expression the rotation workflows read.
fn context(
    prefix: &str,
    state_machine: &str,
    alias: &str,
    candidate: &str,
) -> BTreeMap<String, String> {
    [
        ("inputs.secret", "openai_api_key"),
        ("inputs.environment", "production"),
        (
            "inputs.reason",
            "quarterly; it's \"$(touch /tmp/rotor-pwned)\" `id` | injected | row |\n| forged | line | <img src=x onerror=alert(1)> [click](https://evil.example) **loud**",
        ),
        ("github.triggering_actor", "octo-operator"),
        ("github.run_id", "4242"),
        ("vars.ROTOR_SECRET_PREFIX", prefix),
        ("vars.ROTOR_STATE_MACHINE_ARN", state_machine),
        ("vars.ROTOR_KMS_KEY_ID", alias),
        ("vars.ROTOR_AWS_REGION", REGION),
        (
            "vars.ROTOR_CI_ROTATE_ROLE_ARN",
            "arn:aws:iam::123456789012:role/rotor-ci-rotate",
        ),
        ("secrets.ROTATION_CANDIDATE", candidate),
        ("secrets.candidate", candidate),
        ("inputs.candidate_ciphertext", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The operator's step before the rotate workflow: `rotor encrypt` as ci-rotate (what it needs:
/// kms:Encrypt under the candidate's context, nothing else), the value on stdin; its stdout.
fn rotor_encrypt(secret_id: &str, alias: &str, value: &str) -> String {
    let mut child = rotor_on_moto(rotor_tests::principals::CI_ROTATE_KEY)
        .args(["--kms-key-id", alias, "encrypt", "--secret", secret_id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{value}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "rotor encrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(value), "rotor encrypt printed the value");
    stdout.trim().to_string()
}

/// Where the rotate workflow's candidate comes from.
#[derive(Clone, Copy, PartialEq)]
enum Candidate {
    /// The environment secret ROTATION_CANDIDATE (or the reusable workflow's secret).
    Secret,
    /// rotor encrypt's output in the candidate_ciphertext input; no secret set.
    Sealed,
}

/// Runs a rotation or rollback workflow's job against moto and checks what it started and
/// what it showed; returns the run.
fn run_and_check(workflow: &str, job: &str, action: &str) -> JobRun {
    run_and_check_with(workflow, job, action, Candidate::Secret)
}

fn run_and_check_with(workflow: &str, job: &str, action: &str, from: Candidate) -> JobRun {
    let tmp = TempDir::new("gh-workflow");
    let rt = rt();
    let moto = rt.block_on(Moto::new());
    let state_machine = rt.block_on(moto.state_machine());
    let alias = rt.block_on(moto.key_alias());
    let prefix = format!("gh{}/", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let secret_id = format!("{prefix}openai_api_key");
    create_secret(&secret_id, tmp.path());
    let candidate = format!("sk-candidate-{}", uuid::Uuid::new_v4().simple());
    let mut ctx = context(&prefix, &state_machine, &alias, &candidate);
    if from == Candidate::Sealed {
        let sealed = rotor_encrypt(&secret_id, &alias, &candidate);
        ctx.insert("inputs.candidate_ciphertext".into(), sealed);
        ctx.insert("secrets.ROTATION_CANDIDATE".into(), String::new());
    }
    let _ = std::fs::remove_file("/tmp/rotor-pwned");

    let run = run_job(workflow, job, &ctx, tmp.path());
    let log = run.log();
    assert!(
        !Path::new("/tmp/rotor-pwned").exists(),
        "the reason was executed as code:\n{log}"
    );
    assert!(
        !log.contains(&candidate),
        "a step printed the candidate:\n{log}"
    );
    assert!(
        !run.summary.contains(&candidate),
        "the summary has the candidate:\n{}",
        run.summary
    );

    // What the user typed is inert in the summary: no row, line, tag, link or emphasis of its own.
    let reason_rows: Vec<&str> = run
        .summary
        .lines()
        .filter(|l| l.contains("injected") || l.contains("forged"))
        .collect();
    assert_eq!(reason_rows.len(), 1, "{}", run.summary);
    assert!(reason_rows[0].starts_with("| reason | "), "{}", run.summary);
    assert_eq!(
        reason_rows[0].matches(" | ").count(),
        1,
        "the reason added table cells: {}",
        reason_rows[0]
    );
    for raw in ["<img", "](https://evil", "**loud**", "`id`"] {
        assert!(
            !run.summary.contains(raw),
            "{raw} reached the summary raw:\n{}",
            run.summary
        );
    }

    let start = &run.outputs["start"];
    assert_eq!(start["secret-id"], secret_id, "{log}");
    // moto cannot run Lambda tasks: the execution fails; the job fails with rotor's exit code.
    let code: i32 = start["exit-code"].parse().unwrap();
    assert!([1, 3].contains(&code), "rotor start exited {code}:\n{log}");
    let (last, last_code, _) = run.steps.last().unwrap();
    assert!(last.starts_with("Fail unless"), "{log}");
    assert_eq!(*last_code, code, "{log}");

    // The summary: execution ARN, final status, versions, console link.
    let arn = run
        .summary
        .lines()
        .find_map(|l| {
            l.strip_prefix("| execution | `")
                .and_then(|r| r.strip_suffix("` |"))
        })
        .unwrap_or_else(|| panic!("no execution ARN in the summary:\n{}", run.summary))
        .to_string();
    assert!(
        arn.starts_with("arn:aws:states:us-east-1:") && arn.contains(":execution:"),
        "{arn}"
    );
    let (name, input, status) = rt.block_on(moto.execution(&arn));
    assert_eq!(status, "FAILED");
    assert!(
        run.summary.contains("| status | FAILED |"),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains("| old version |") && run.summary.contains("| new version |"),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains(&format!("https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/{arn}")),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains(&format!("`{secret_id}`")),
        "{}",
        run.summary
    );

    // The execution: its name and its input.
    let slug = secret_id.replace('/', "-");
    assert!(name.starts_with(&format!("{action}-{slug}-")), "{name}");
    assert_eq!(
        name.len(),
        format!("{action}-{slug}-").len() + 15 + 1 + 8,
        "{name}"
    );
    let input_text = input.to_string();
    assert!(!input_text.contains(&candidate), "{input_text}");
    assert_eq!(input["action"], action);
    assert_eq!(input["secret_id"], secret_id.as_str());
    assert_eq!(input["requested_by"], "github:octo-operator");
    assert_eq!(input["reason"], ctx["inputs.reason"].as_str());
    if action == "rotate" {
        let (plain, sealed_for) =
            rt.block_on(moto.decrypt(input["candidate_ciphertext"].as_str().unwrap(), &secret_id));
        assert_eq!(plain, candidate);
        assert_eq!(
            sealed_for, name,
            "the candidate is sealed to this execution"
        );
    } else {
        assert!(
            input.get("candidate_ciphertext").is_none_or(Json::is_null),
            "{input}"
        );
    }
    run
}

#[test]
fn rotate_workflow_starts_the_rotation_with_ciphertext_only() {
    let run = run_and_check("rotate-secret.yml", "rotate", "rotate");
    // The environment-secret route works, and says that the key is still in GitHub.
    assert!(
        run.log()
            .contains("gh secret delete ROTATION_CANDIDATE --env production"),
        "{}",
        run.log()
    );
}

/// The candidate never stored in GitHub: sealed on the operator's machine by `rotor encrypt`,
/// passed as an input, started under the execution name it is sealed for.
#[test]
fn rotate_workflow_takes_a_candidate_rotor_encrypt_sealed() {
    let run = run_and_check_with("rotate-secret.yml", "rotate", "rotate", Candidate::Sealed);
    assert!(
        !run.log()
            .contains("ROTATION_CANDIDATE, which keeps it in GitHub"),
        "{}",
        run.log()
    );
}

#[test]
fn reusable_rotate_workflow_takes_the_candidate_as_a_secret() {
    let run = run_and_check("rotate-secret-reusable.yml", "rotate", "rotate");
    let start = &run.outputs["start"];
    assert!(start["execution-arn"].contains(":execution:"), "{start:?}");
    assert_eq!(start["status"], "FAILED");
}

#[test]
fn rollback_workflow_starts_a_rollback() {
    run_and_check("rollback-secret.yml", "rollback", "rollback");
}

#[test]
fn rotate_workflow_without_a_candidate_fails_and_starts_nothing() {
    let tmp = TempDir::new("gh-workflow-empty");
    let mut ctx = context(
        "gh-none/",
        "arn:aws:states:us-east-1:123456789012:stateMachine:none",
        "alias/none",
        "",
    );
    ctx.insert("secrets.ROTATION_CANDIDATE".into(), String::new());
    let run = run_job("rotate-secret.yml", "rotate", &ctx, tmp.path());
    let log = run.log();
    assert_eq!(run.outputs["start"]["exit-code"], "2", "{log}");
    assert!(
        log.contains("gh secret set ROTATION_CANDIDATE --env production"),
        "{log}"
    );
    assert_eq!(run.steps.last().unwrap().1, 2, "{log}");
    assert!(
        run.summary.contains("| execution | `-` |"),
        "{}",
        run.summary
    );
}

// ------------------------------------------------------------------ the deploy workflow

/// Makes the provider and the S3 backend of a Terraform root talk to moto: the only difference
/// from AWS, written as an override file into the test's copy of the checkout.
fn moto_override(endpoint: &str) -> String {
    const TEMPLATE: &str = r#"# Test only (github_workflows.rs): every AWS endpoint is moto's.
provider "aws" {
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  max_retries                 = 3
  endpoints {
SERVICES  }
}

terraform {
  backend "s3" {
    use_path_style              = true
    skip_credentials_validation = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    skip_requesting_account_id  = true
    endpoints = {
      s3  = "ENDPOINT"
      sts = "ENDPOINT"
      iam = "ENDPOINT"
    }
  }
}
"#;
    let services: String = [
        "cloudwatch",
        "cloudwatchlogs",
        "iam",
        "kms",
        "lambda",
        "s3",
        "scheduler",
        "secretsmanager",
        "sfn",
        "sns",
        "sts",
    ]
    .iter()
    .map(|s| format!("    {s} = \"ENDPOINT\"\n"))
    .collect();
    TEMPLATE
        .replace("SERVICES", &services)
        .replace("ENDPOINT", endpoint)
}

/// `terraform state pull` in a root the workflow initialised: the state in its S3 backend.
fn state_in_s3(root: &Path, endpoint: &str) -> String {
    let out = Command::new(rotor_tests::terraform::terraform_bin())
        .arg(format!("-chdir={}", root.display()))
        .args(["state", "pull"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env_remove("TF_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("terraform state pull");
    assert!(
        out.status.success(),
        "terraform state pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 state")
}

fn assert_job_ok(what: &str, run: &JobRun, steps: usize) {
    assert_eq!(
        run.steps.iter().filter(|(_, code, _)| *code == 0).count(),
        steps,
        "{what}: every run: step must succeed\n{}\n--- summary\n{}",
        run.log(),
        run.summary
    );
}

/// The deploy workflow's plan and apply jobs, run as GitHub would run them against a moto of
/// their own (the development root deploys fixed names, and an OIDC provider, which other
/// suites on the shared moto also create): `init` with the backend the workflow configures
/// (state in S3, on moto), the plan as the job summary, the apply, and a second plan that finds
/// no changes in the state the apply left in the bucket. `scripts/package` is replaced by
/// placeholder zips (moto never runs a function); the roles are moto's test credentials.
#[test]
fn deploy_workflow_plans_applies_and_keeps_its_state_in_s3() {
    let moto = rotor_tests::moto::PrivateMoto::start("deploy");
    let tmp = TempDir::new("gh-deploy");
    let checkout = tmp.path().join("checkout");
    for dir in ["infrastructure", "statemachine"] {
        rotor_tests::terraform::copy_tree(&repo_root().join(dir), &checkout.join(dir));
    }
    let zips = tmp.path().join("lambda-zips");
    rotor_tests::terraform::placeholder_zips(&zips);
    let root = checkout.join("infrastructure/environments/development");
    std::fs::write(root.join("moto_override.tf"), moto_override(&moto.endpoint)).unwrap();
    let bucket = "rotor-terraform-state-test";
    assert!(
        moto.request("PUT", &format!("/{bucket}"), "").is_some(),
        "CreateBucket {bucket} on moto"
    );

    let terraform = rotor_tests::terraform::terraform_bin();
    let path = format!(
        "{}:{}",
        terraform.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let options = JobOptions {
        checkout: checkout.clone(),
        endpoint: moto.endpoint.clone(),
        skip: vec!["Lambda zips"],
        env: vec![
            ("PATH".into(), path),
            ("TF_CLI_CONFIG_FILE".into(), tool("TF_CLI_CONFIG_FILE")),
            ("TF_VAR_lambda_zip_dir".into(), zips.display().to_string()),
            ("GITHUB_SHA".into(), sha.into()),
        ],
    };
    let ctx: BTreeMap<String, String> = [
        ("matrix.environment", "development"),
        ("vars.ROTOR_TF_STATE_BUCKET", bucket),
        ("vars.ROTOR_TF_STATE_REGION", REGION),
        ("github.repository", "example-org/rotor"),
        ("github.run_id", "4242"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();

    let plan = run_job_with("deploy.yml", "plan", &ctx, tmp.path(), &options);
    assert_job_ok("deploy.yml plan", &plan, 1);
    assert!(
        plan.summary.contains("## terraform plan: development")
            && plan.summary.contains("Plan: ")
            && plan.summary.contains(" to add, 0 to change, 0 to destroy"),
        "the plan summary:\n{}",
        plan.summary
    );
    let before: Json =
        serde_json::from_str(&state_in_s3(&root, &moto.endpoint)).expect("state JSON");
    assert_eq!(
        before["resources"],
        serde_json::json!([]),
        "a plan must not write the state"
    );

    let apply = run_job_with("deploy.yml", "apply", &ctx, tmp.path(), &options);
    assert_job_ok("deploy.yml apply", &apply, 1);
    assert!(
        apply.summary.contains("## terraform apply: development")
            && apply.summary.contains(&format!("Applied commit `{sha}`")),
        "the apply summary:\n{}",
        apply.summary
    );
    let state = state_in_s3(&root, &moto.endpoint);
    assert!(
        state.contains("rotor-development-rotation")
            && state.contains("rotor-development-ci-deploy"),
        "the state in S3 does not hold the deployment:\n{}",
        &state[..state.len().min(2000)]
    );

    let replan = run_job_with("deploy.yml", "plan", &ctx, tmp.path(), &options);
    assert_job_ok("deploy.yml plan after the apply", &replan, 1);
    assert!(
        replan.summary.contains("No changes."),
        "the plan after the apply, from the state in S3, must find no changes:\n{}",
        replan.summary
    );
}
