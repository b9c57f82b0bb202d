//! `rotor secret create|list|show|tag|get`.

use crate::backend::{Backend, GlobalArgs, Need};
use crate::exit;
use crate::output::clean;
use crate::store;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use rotor_core::policy::{Policy, TAG_KIND, TAG_PROBE};
use rotor_core::secret::{SecretInfo, SecretValue, Version, AWSCURRENT};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum SecretCommand {
    /// Create a secret; its policy is written as `rotor:*` tags.
    Create(CreateArgs),
    /// List the secrets in the store (on aws: every secret in the account and region).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Versions, stages and tags of a secret; never its value.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Add or change tags of a secret (its rotor policy). The policy the tags would make is
    /// checked first: a tag rotor cannot read is refused, naming it, and nothing changes.
    Tag {
        id: String,
        /// KEY=VALUE, e.g. --tag rotor:consumers=ecs:prod/backend (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE", required = true)]
        tags: Vec<String>,
    },
    /// Print a secret's value: the only command that does, and only with --reveal.
    Get {
        id: String,
        /// The staging label to read (default AWSCURRENT).
        #[arg(long, default_value = AWSCURRENT)]
        stage: String,
        /// Required: say that you mean to print a secret value.
        #[arg(long)]
        reveal: bool,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    id: String,
    /// vendor-api-key, generated or iam-access-key.
    #[arg(long)]
    kind: String,
    /// Vendor probe preset (openai, polygon, finnhub, alpha-vantage, alchemy, newsapi, walletconnect) or http.
    #[arg(long)]
    probe: Option<String>,
    /// More tags, e.g. --tag rotor:app-health-url=https://app/health.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    #[arg(long)]
    description: Option<String>,
    /// Read the first value from a file (one trailing newline is dropped).
    #[arg(
        long,
        conflicts_with = "value_stdin",
        required_unless_present = "value_stdin"
    )]
    value_file: Option<PathBuf>,
    /// Read the first value from standard input (one trailing newline is dropped).
    #[arg(long)]
    value_stdin: bool,
}

/// Reads a value or candidate from a file or stdin: UTF-8, one trailing newline dropped.
pub fn read_value(file: Option<&Path>, stdin: bool, what: &str) -> Result<SecretValue> {
    let mut bytes = Vec::new();
    match (file, stdin) {
        (Some(path), _) => {
            bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the {what} file {}", path.display()))?
        }
        (None, true) => {
            std::io::stdin()
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read the {what} from stdin"))?;
        }
        (None, false) => bail!(
            "give the {what} with a file or --{}-stdin",
            what.split(' ').next().unwrap_or(what)
        ),
    }
    let mut text =
        String::from_utf8(bytes).map_err(|_| anyhow!("the {what} is not valid UTF-8"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(SecretValue::new(text))
}

fn parse_tags(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--tag {p:?} is not KEY=VALUE"))
        })
        .collect()
}

pub fn show_json(info: &SecretInfo) -> serde_json::Value {
    json!({
        "id": info.id,
        "versions": info.versions.iter().map(|v| json!({"version_id": v.version_id, "stages": v.stages})).collect::<Vec<_>>(),
        "tags": info.tags,
    })
}

pub fn run(global: &GlobalArgs, cmd: SecretCommand) -> Result<u8> {
    let need = match cmd {
        SecretCommand::Create(_) => Need::CreateIfMissing,
        _ => Need::Existing,
    };
    let rt = store::runtime()?;
    let backend = rt.block_on(Backend::open(global, need))?;
    let store = backend.secrets();
    match cmd {
        SecretCommand::Create(args) => {
            let mut tags = parse_tags(&args.tags)?;
            tags.insert(TAG_KIND.into(), args.kind.clone());
            if let Some(p) = &args.probe {
                tags.insert(TAG_PROBE.into(), p.clone());
            }
            Policy::from_tags(&args.id, &tags).map_err(|e| anyhow!(e))?;
            let value = read_value(args.value_file.as_deref(), args.value_stdin, "value")?;
            let version = match &backend {
                Backend::Local(local) => local
                    .create_secret(&args.id, &value, tags, args.description)
                    .map_err(|e| anyhow!(e))?,
                Backend::Aws(aws) => rt
                    .block_on(aws.secrets.create_secret(
                        &args.id,
                        &value,
                        &tags,
                        args.description.as_deref(),
                        None,
                    ))
                    .map_err(|e| anyhow!(e))?,
            };
            println!(
                "created {} (version {}, AWSCURRENT)",
                clean(&args.id),
                clean(&version)
            );
            Ok(exit::OK)
        }
        SecretCommand::Tag { id, tags } => {
            let changes = parse_tags(&tags)?;
            let info = rt.block_on(store.describe(&id)).map_err(|e| anyhow!(e))?;
            let mut merged = info.tags.clone();
            merged.extend(changes.clone());
            Policy::from_tags(&id, &merged).map_err(|e| anyhow!(e))?;
            match &backend {
                Backend::Local(local) => local.tag_secret(&id, &changes).map_err(|e| anyhow!(e))?,
                Backend::Aws(aws) => rt
                    .block_on(aws.secrets.tag_secret(&id, &changes))
                    .map_err(|e| anyhow!(e))?,
            }
            println!(
                "tagged {} ({})",
                clean(&id),
                clean(&changes.keys().cloned().collect::<Vec<_>>().join(", "))
            );
            Ok(exit::OK)
        }
        SecretCommand::List { json } => {
            let secrets = match &backend {
                Backend::Local(local) => local.list_secrets().map_err(|e| anyhow!(e))?,
                Backend::Aws(aws) => rt
                    .block_on(aws.secrets.list_secrets())
                    .map_err(|e| anyhow!(e))?,
            };
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(secrets.iter().map(show_json).collect())
                );
            } else {
                for s in &secrets {
                    let kind = s.tags.get(TAG_KIND).map(String::as_str).unwrap_or("-");
                    let current = s
                        .version_with(AWSCURRENT)
                        .map(|v| v.version_id.as_str())
                        .unwrap_or("-");
                    println!(
                        "{:<52} {:<16} {} version(s), AWSCURRENT {}",
                        clean(&s.id),
                        clean(kind),
                        s.versions.len(),
                        clean(current)
                    );
                }
            }
            Ok(exit::OK)
        }
        SecretCommand::Show { id, json } => {
            let info = rt.block_on(store.describe(&id)).map_err(|e| anyhow!(e))?;
            if json {
                println!("{}", show_json(&info));
            } else {
                println!("{}", clean(&info.id));
                for v in &info.versions {
                    println!(
                        "  version {}  {}  {}",
                        clean(&v.version_id),
                        clean(&v.created_at),
                        clean(&v.stages.join(","))
                    );
                }
                for (k, v) in &info.tags {
                    println!("  tag {}={}", clean(k), clean(v));
                }
            }
            Ok(exit::OK)
        }
        SecretCommand::Get { id, stage, reveal } => {
            if !reveal {
                bail!("refusing to print the value of {id} without --reveal");
            }
            let (_, value) = rt
                .block_on(store.get_value(&id, &Version::Stage(stage)))
                .map_err(|e| anyhow!(e))?;
            println!("{}", value.expose());
            Ok(exit::OK)
        }
    }
}
