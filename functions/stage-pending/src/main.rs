//! stage-pending: stage the candidate on AWSPENDING under the execution's token.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("stage-pending").await
}
