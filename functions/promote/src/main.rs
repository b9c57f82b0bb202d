//! promote: move AWSCURRENT to the staged version (compare-and-swap), then clear AWSPENDING.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotor_lambda::serve("promote").await
}
