//! audit-log: write the execution's audit record and metrics; never a value.

use rotor_core::events::AuditInput;
use rotor_core::handlers;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("audit-log", |services, input: AuditInput| async move {
        handlers::audit_log(&services, input).await
    })
    .await
}
