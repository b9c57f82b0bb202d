//! health-probe: prove a version works (candidate) or the application is healthy (after promote).

use rotor_core::events::HealthProbeInput;
use rotor_core::handlers;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve(
        "health-probe",
        |services, input: HealthProbeInput| async move {
            handlers::health_probe(&services, input).await
        },
    )
    .await
}
