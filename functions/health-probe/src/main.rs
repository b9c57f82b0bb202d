//! health-probe: prove a version works (candidate) or the application is healthy (after promote).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("health-probe").await
}
