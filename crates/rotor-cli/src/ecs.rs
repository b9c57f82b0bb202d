//! `rotor ecs create-service|describe-services|delete-service`: the local store's ECS-like
//! services, the consumers a rotation redeploys (`rotor:consumers`) on a laptop. On AWS the
//! services are ECS's own (Terraform, the console or the AWS CLI manage them).

use crate::backend::{BackendKind, GlobalArgs};
use crate::exit;
use crate::output::clean;
use crate::store;
use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use rotor_core::consumers::Ecs;

#[derive(Subcommand)]
pub enum EcsCommand {
    /// Create a service whose tasks read the given secrets when they start (as ECS tasks read
    /// `secrets[].valueFrom`); it starts on their current values. Name it in a secret's
    /// rotor:consumers tag as ecs:<cluster>/<service>.
    CreateService {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        service: String,
        /// A secret its task definition reads (repeatable).
        #[arg(long = "secret", value_name = "ID", required = true)]
        secrets: Vec<String>,
        #[arg(long, default_value_t = 1)]
        desired_count: i32,
        /// Its new tasks crash on a value the service never ran on (a redeploy that fails, as
        /// the deployment circuit breaker reports it), for trying the revert.
        #[arg(long)]
        crash_on_new_value: bool,
    },
    /// A service's deployments (newest first) and the secret versions its running tasks hold.
    DescribeServices {
        #[arg(long)]
        cluster: String,
        #[arg(long = "service", value_name = "NAME", required = true)]
        services: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a service and its deployments.
    DeleteService {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        service: String,
    },
}

pub fn run(global: &GlobalArgs, cmd: EcsCommand) -> Result<u8> {
    if global.backend() == BackendKind::Aws {
        bail!("rotor ecs manages the local store's ECS-like services; on the aws backend the consumers are ECS services (manage them with Terraform, the console or the AWS CLI)");
    }
    let e = |e: rotor_core::RotorError| anyhow!(e);
    match cmd {
        EcsCommand::CreateService {
            cluster,
            service,
            secrets,
            desired_count,
            crash_on_new_value,
        } => {
            let store = store::open(global.store.clone())?;
            store
                .create_service(&rotor_local_store::ServiceSpec {
                    cluster: cluster.clone(),
                    service: service.clone(),
                    desired_count,
                    secrets,
                    crash_on_new_value,
                })
                .map_err(e)?;
            println!(
                "created ecs:{}/{} ({desired_count} task(s) on the secrets' current values)",
                clean(&cluster),
                clean(&service)
            );
            Ok(exit::OK)
        }
        EcsCommand::DescribeServices {
            cluster,
            services,
            json,
        } => {
            let store = store::open(global.store.clone())?;
            let rt = store::runtime()?;
            let (found, failures) = rt
                .block_on(store.describe_services(&cluster, &services))
                .map_err(|f| anyhow!("{}: {}", f.code, f.message))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"services": found, "failures": failures})
                );
            } else {
                for s in &found {
                    println!(
                        "{}  desired {}  running {}",
                        clean(&s.service_arn),
                        s.desired_count,
                        s.running_count
                    );
                    for d in &s.deployments {
                        println!(
                            "  {}  {:<8} {:<12} {}/{} running  {}",
                            clean(&d.id),
                            clean(&d.status),
                            clean(&d.rollout_state),
                            d.running_count,
                            d.desired_count,
                            clean(&d.rollout_state_reason)
                        );
                    }
                }
                for f in &failures {
                    println!("{}  {}", clean(&f.arn), clean(&f.reason));
                }
            }
            Ok(if failures.is_empty() {
                exit::OK
            } else {
                exit::USAGE
            })
        }
        EcsCommand::DeleteService { cluster, service } => {
            let store = store::open(global.store.clone())?;
            store.delete_service(&cluster, &service).map_err(e)?;
            println!("deleted ecs:{}/{}", clean(&cluster), clean(&service));
            Ok(exit::OK)
        }
    }
}
