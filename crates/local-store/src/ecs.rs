//! ECS-like services: what a rotation's consumers are on a laptop.
//!
//! A service has a desired count, the secrets its task definition reads (`valueFrom`) and its
//! deployments, newest first. Like ECS, its tasks read each secret once, when they start: a
//! deployment pins the AWSCURRENT version of every secret at the moment it starts
//! (`UpdateService`), and the tasks keep that value until the next deployment.
//! [`LocalStore::serving_version`] answers which value the running tasks hold (the app
//! stand-in reads its key through it).
//!
//! A rollout settles on the second DescribeServices after it started (the first still sees it
//! `IN_PROGRESS`, so a consumer refresh always polls at least twice): `COMPLETED`, with the
//! older deployments drained, or, for a service created with `crash_on_new_value`, `FAILED`
//! when the deployment pins a version none of the service's deployments ever completed on (its
//! new tasks crash on the new key; the older deployment keeps running), as ECS's deployment
//! circuit breaker reports it.

use crate::db::R;
use crate::iam::LOCAL_ACCOUNT;
use crate::secrets::{require_secret, stage_holder};
use crate::LocalStore;
use async_trait::async_trait;
use rand::Rng;
use rotor_core::consumers::{Ecs, EcsDeployment, EcsError, EcsFailure, EcsService};
use rotor_core::error::{Result, RotorError};
use rotor_core::secret::AWSCURRENT;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;

/// The region in the local store's ECS ARNs.
pub const LOCAL_REGION: &str = "local";

/// Describes after which an `IN_PROGRESS` rollout settles.
const LOOKS_TO_SETTLE: i64 = 2;

/// A service to create: [`LocalStore::create_service`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub cluster: String,
    pub service: String,
    pub desired_count: i32,
    /// The secrets its task definition reads with `valueFrom` (each must exist).
    pub secrets: Vec<String>,
    /// Its new tasks crash on a value it never ran on before (a refresh that fails).
    pub crash_on_new_value: bool,
}

/// `arn:...:cluster/NAME` or NAME -> NAME; `arn:...:service/CLUSTER/NAME` or NAME -> NAME.
fn last_segment(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
    } else {
        name_or_arn
    }
}

fn cluster_arn(cluster: &str) -> String {
    format!("arn:aws:ecs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:cluster/{cluster}")
}

fn service_arn(cluster: &str, service: &str) -> String {
    format!("arn:aws:ecs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:service/{cluster}/{service}")
}

fn deployment_id() -> String {
    let n: u64 = rand::rngs::OsRng.gen_range(10_u64.pow(17)..10_u64.pow(18));
    format!("ecs-svc/{n}")
}

struct Row {
    seq: i64,
    id: String,
    status: String,
    rollout_state: String,
    reason: String,
    desired: i32,
    running: i32,
    failed: i32,
    pins: BTreeMap<String, String>,
    looks: i64,
    created_at: String,
    updated_at: String,
}

fn deployments(tx: &Transaction<'_>, cluster: &str, service: &str) -> R<Vec<Row>> {
    let mut stmt = tx.prepare(
        "SELECT seq, id, status, rollout_state, reason, desired, running, failed, pins, looks, created_at, updated_at
         FROM ecs_deployments WHERE cluster = ?1 AND service = ?2 ORDER BY seq DESC",
    )?;
    let rows = stmt
        .query_map([cluster, service], |r| {
            let pins: String = r.get(8)?;
            Ok(Row {
                seq: r.get(0)?,
                id: r.get(1)?,
                status: r.get(2)?,
                rollout_state: r.get(3)?,
                reason: r.get(4)?,
                desired: r.get(5)?,
                running: r.get(6)?,
                failed: r.get(7)?,
                pins: serde_json::from_str(&pins).unwrap_or_default(),
                looks: r.get(9)?,
                created_at: r.get(10)?,
                updated_at: r.get(11)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

struct ServiceRow {
    desired: i32,
    secrets: Vec<String>,
    crash_on_new_value: bool,
}

fn service_row(tx: &Transaction<'_>, cluster: &str, service: &str) -> R<Option<ServiceRow>> {
    Ok(tx
        .query_row(
            "SELECT desired_count, secrets, crash_on_new_value FROM ecs_services WHERE cluster = ?1 AND service = ?2",
            [cluster, service],
            |r| {
                let secrets: String = r.get(1)?;
                Ok(ServiceRow {
                    desired: r.get(0)?,
                    secrets: serde_json::from_str(&secrets).unwrap_or_default(),
                    crash_on_new_value: r.get::<_, i64>(2)? != 0,
                })
            },
        )
        .optional()?)
}

fn cluster_exists(tx: &Transaction<'_>, cluster: &str) -> R<bool> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM ecs_services WHERE cluster = ?1 LIMIT 1",
            [cluster],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .is_some())
}

/// The AWSCURRENT version of each secret: what a task starting now reads.
fn current_pins(tx: &Transaction<'_>, secrets: &[String]) -> R<BTreeMap<String, String>> {
    let mut pins = BTreeMap::new();
    for s in secrets {
        if let Some(v) = stage_holder(tx, s, AWSCURRENT)? {
            pins.insert(s.clone(), v);
        }
    }
    Ok(pins)
}

fn insert_deployment(
    tx: &Transaction<'_>,
    cluster: &str,
    service: &str,
    seq: i64,
    row: &Row,
) -> R<()> {
    tx.execute(
        "INSERT INTO ecs_deployments (cluster, service, seq, id, status, rollout_state, reason, desired, running, failed, pins, looks, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            cluster,
            service,
            seq,
            row.id,
            row.status,
            row.rollout_state,
            row.reason,
            row.desired,
            row.running,
            row.failed,
            serde_json::to_string(&row.pins).unwrap_or_default(),
            row.looks,
            row.created_at,
            row.updated_at
        ],
    )?;
    Ok(())
}

fn save(tx: &Transaction<'_>, cluster: &str, service: &str, row: &Row) -> R<()> {
    tx.execute(
        "UPDATE ecs_deployments SET status = ?4, rollout_state = ?5, reason = ?6, running = ?7, failed = ?8, looks = ?9, updated_at = ?10
         WHERE cluster = ?1 AND service = ?2 AND seq = ?3",
        params![
            cluster,
            service,
            row.seq,
            row.status,
            row.rollout_state,
            row.reason,
            row.running,
            row.failed,
            row.looks,
            row.updated_at
        ],
    )?;
    Ok(())
}

fn answer(cluster: &str, service: &str, spec: &ServiceRow, rows: &[Row]) -> EcsService {
    let task_definition =
        format!("arn:aws:ecs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:task-definition/{service}:1");
    let shown: Vec<EcsDeployment> = rows
        .iter()
        .filter(|r| r.status != "INACTIVE")
        .map(|r| EcsDeployment {
            id: r.id.clone(),
            status: r.status.clone(),
            rollout_state: r.rollout_state.clone(),
            rollout_state_reason: r.reason.clone(),
            desired_count: r.desired,
            running_count: r.running,
            pending_count: if r.rollout_state == "IN_PROGRESS" {
                r.desired - r.running
            } else {
                0
            },
            failed_tasks: r.failed,
            task_definition: task_definition.clone(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
        })
        .collect();
    EcsService {
        service_arn: service_arn(cluster, service),
        service_name: service.to_string(),
        cluster_arn: cluster_arn(cluster),
        status: "ACTIVE".into(),
        desired_count: spec.desired,
        running_count: shown.iter().map(|d| d.running_count).sum(),
        pending_count: shown.iter().map(|d| d.pending_count).sum(),
        task_definition,
        deployments: shown,
    }
}

fn ecs_error(e: RotorError) -> EcsError {
    match e {
        RotorError::Throttled(m) => EcsError::new("ThrottlingException", m),
        other => EcsError::new("ServerException", other.to_string()),
    }
}

impl LocalStore {
    /// Creates a service running `desired_count` tasks on the secrets' current values (one
    /// COMPLETED deployment). An existing service, a bad name or an unknown secret is
    /// `Input.Invalid`, naming it; nothing is created.
    pub fn create_service(&self, spec: &ServiceSpec) -> Result<()> {
        for (what, name) in [("cluster", &spec.cluster), ("service", &spec.service)] {
            let ok = !name.is_empty()
                && name.len() <= 255
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(RotorError::input(format!(
                    "ECS {what} name {name:?}: expected 1 to 255 letters, digits, hyphens and underscores"
                )));
            }
        }
        if spec.desired_count < 1 {
            return Err(RotorError::input(format!(
                "service {}/{}: the desired count is {}; it must run at least one task",
                spec.cluster, spec.service, spec.desired_count
            )));
        }
        let now = self.now_rfc3339();
        self.write(|tx| {
            if service_row(tx, &spec.cluster, &spec.service)?.is_some() {
                return Err(RotorError::input(format!(
                    "service {}/{} already exists (InvalidParameterException)",
                    spec.cluster, spec.service
                ))
                .into());
            }
            for s in &spec.secrets {
                require_secret(tx, s)?;
            }
            tx.execute(
                "INSERT INTO ecs_services (cluster, service, desired_count, secrets, crash_on_new_value, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    spec.cluster,
                    spec.service,
                    spec.desired_count,
                    serde_json::to_string(&spec.secrets).unwrap_or_default(),
                    spec.crash_on_new_value as i64,
                    now
                ],
            )?;
            let id = deployment_id();
            let row = Row {
                seq: 1,
                reason: format!("ECS deployment {id} completed."),
                id,
                status: "PRIMARY".into(),
                rollout_state: "COMPLETED".into(),
                desired: spec.desired_count,
                running: spec.desired_count,
                failed: 0,
                pins: current_pins(tx, &spec.secrets)?,
                looks: 0,
                created_at: now.clone(),
                updated_at: now.clone(),
            };
            insert_deployment(tx, &spec.cluster, &spec.service, 1, &row)
        })
    }

    /// Deletes a service and its deployments (none: nothing to do).
    pub fn delete_service(&self, cluster: &str, service: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM ecs_deployments WHERE cluster = ?1 AND service = ?2",
                [cluster, service],
            )?;
            tx.execute(
                "DELETE FROM ecs_services WHERE cluster = ?1 AND service = ?2",
                [cluster, service],
            )?;
            Ok(())
        })
    }

    /// Every service, as `(cluster, service)`.
    pub fn list_services(&self) -> Result<Vec<(String, String)>> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare("SELECT cluster, service FROM ecs_services ORDER BY cluster, service")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// The version of `secret_id` the service's running tasks hold: the one the newest
    /// deployment that runs tasks started on (`None`: no such service, no running task, or a
    /// task definition that does not read the secret).
    pub fn serving_version(
        &self,
        cluster: &str,
        service: &str,
        secret_id: &str,
    ) -> Result<Option<String>> {
        self.read(|tx| {
            Ok(deployments(tx, cluster, service)?
                .into_iter()
                .find(|d| d.running > 0)
                .and_then(|d| d.pins.get(secret_id).cloned()))
        })
    }

    fn update_service_sync(
        &self,
        cluster: &str,
        service: &str,
        force: bool,
    ) -> std::result::Result<EcsService, EcsError> {
        let (cluster, service) = (last_segment(cluster), last_segment(service));
        let now = self.now_rfc3339();
        let done = self.write(|tx| {
            if !cluster_exists(tx, cluster)? {
                return Ok(Err(EcsError::new(
                    "ClusterNotFoundException",
                    format!("Cluster not found: {cluster}"),
                )));
            }
            let Some(spec) = service_row(tx, cluster, service)? else {
                return Ok(Err(EcsError::new(
                    "ServiceNotFoundException",
                    format!("Service not found: {service} in cluster {cluster}"),
                )));
            };
            if force {
                let mut rows = deployments(tx, cluster, service)?;
                for r in rows.iter_mut().filter(|r| r.status == "PRIMARY") {
                    r.status = "ACTIVE".into();
                    r.updated_at = now.clone();
                    save(tx, cluster, service, r)?;
                }
                let seq = rows.first().map_or(1, |r| r.seq + 1);
                let id = deployment_id();
                let row = Row {
                    seq,
                    reason: format!("ECS deployment {id} in progress."),
                    id,
                    status: "PRIMARY".into(),
                    rollout_state: "IN_PROGRESS".into(),
                    desired: spec.desired,
                    running: 0,
                    failed: 0,
                    // The new tasks read the secrets now.
                    pins: current_pins(tx, &spec.secrets)?,
                    looks: 0,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                };
                insert_deployment(tx, cluster, service, seq, &row)?;
            }
            let rows = deployments(tx, cluster, service)?;
            Ok(Ok(answer(cluster, service, &spec, &rows)))
        });
        done.map_err(ecs_error)?
    }

    fn describe_services_sync(
        &self,
        cluster: &str,
        services: &[String],
    ) -> std::result::Result<(Vec<EcsService>, Vec<EcsFailure>), EcsError> {
        let cluster = last_segment(cluster);
        let now = self.now_rfc3339();
        let done = self.write(|tx| {
            if !cluster_exists(tx, cluster)? {
                return Ok(Err(EcsError::new(
                    "ClusterNotFoundException",
                    format!("Cluster not found: {cluster}"),
                )));
            }
            let (mut found, mut failures) = (Vec::new(), Vec::new());
            for name in services {
                let service = last_segment(name);
                let Some(spec) = service_row(tx, cluster, service)? else {
                    failures.push(EcsFailure {
                        arn: service_arn(cluster, service),
                        reason: "MISSING".into(),
                    });
                    continue;
                };
                let mut rows = deployments(tx, cluster, service)?;
                settle(tx, cluster, service, &spec, &mut rows, &now)?;
                found.push(answer(cluster, service, &spec, &rows));
            }
            Ok(Ok((found, failures)))
        });
        done.map_err(ecs_error)?
    }
}

/// One look at the service: an `IN_PROGRESS` PRIMARY deployment settles on its second look.
fn settle(
    tx: &Transaction<'_>,
    cluster: &str,
    service: &str,
    spec: &ServiceRow,
    rows: &mut [Row],
    now: &str,
) -> R<()> {
    let Some(i) = rows
        .iter()
        .position(|r| r.status == "PRIMARY" && r.rollout_state == "IN_PROGRESS")
    else {
        return Ok(());
    };
    rows[i].looks += 1;
    rows[i].updated_at = now.to_string();
    if rows[i].looks >= LOOKS_TO_SETTLE {
        // Versions the service already ran on: its tasks are known to start on them.
        let proven: Vec<&String> = rows
            .iter()
            .filter(|r| r.rollout_state == "COMPLETED")
            .flat_map(|r| r.pins.values())
            .collect();
        let crashes =
            spec.crash_on_new_value && rows[i].pins.values().any(|v| !proven.contains(&v));
        if crashes {
            rows[i].rollout_state = "FAILED".into();
            rows[i].failed = rows[i].desired;
            rows[i].reason = "ECS deployment circuit breaker: tasks failed to start. (Essential container in task exited)".into();
        } else {
            rows[i].rollout_state = "COMPLETED".into();
            rows[i].running = rows[i].desired;
            rows[i].reason = format!("ECS deployment {} completed.", rows[i].id);
            // The older deployments' tasks are drained.
            for (j, r) in rows.iter_mut().enumerate() {
                if j != i && r.status != "INACTIVE" {
                    r.status = "INACTIVE".into();
                    r.running = 0;
                    r.updated_at = now.to_string();
                    save(tx, cluster, service, r)?;
                }
            }
        }
    }
    save(tx, cluster, service, &rows[i])
}

#[async_trait]
impl Ecs for LocalStore {
    async fn update_service(
        &self,
        cluster: &str,
        service: &str,
        force_new_deployment: bool,
    ) -> std::result::Result<EcsService, EcsError> {
        self.update_service_sync(cluster, service, force_new_deployment)
    }

    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> std::result::Result<(Vec<EcsService>, Vec<EcsFailure>), EcsError> {
        self.describe_services_sync(cluster, services)
    }
}

/// The schema of the services (version 3).
pub(crate) const SCHEMA_V3: &str = r#"
CREATE TABLE ecs_services (
    cluster            TEXT NOT NULL,
    service            TEXT NOT NULL,
    desired_count      INTEGER NOT NULL,
    secrets            TEXT NOT NULL,
    crash_on_new_value INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    PRIMARY KEY (cluster, service)
);
CREATE TABLE ecs_deployments (
    cluster       TEXT NOT NULL,
    service       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    id            TEXT NOT NULL,
    status        TEXT NOT NULL,
    rollout_state TEXT NOT NULL,
    reason        TEXT NOT NULL,
    desired       INTEGER NOT NULL,
    running       INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    pins          TEXT NOT NULL,
    looks         INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (cluster, service, seq),
    FOREIGN KEY (cluster, service) REFERENCES ecs_services (cluster, service) ON DELETE CASCADE
);
"#;
