# rotor, development: one region, the example secrets below. Deploy:
#   scripts/package                                   # target/lambda-zips/
#   terraform -chdir=infrastructure/environments/development init -backend-config=backend.hcl
#   terraform -chdir=infrastructure/environments/development apply
# backend.hcl (not committed) names the state bucket: bucket, key (rotor/development.tfstate, as
# .github/workflows/deploy.yml uses), region, use_lockfile = true. Pass the same bucket and key
# as -var terraform_state_bucket=... -var terraform_state_key=... so ci-plan/ci-deploy may use them.

terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }

  # Partial configuration: `terraform init -backend-config=backend.hcl`.
  backend "s3" {}
}

provider "aws" {
  region = var.region
}

locals {
  # What the backend application reads (keys of the module's secrets below).
  backend_secrets = ["openai", "polygon", "finnhub", "alpha-vantage", "alchemy", "walletconnect", "newsapi"]
  # The backend's ECS services in development whose tasks read those keys (secrets[].valueFrom), as
  # long-format service ARNs in the primary region, e.g.
  # "arn:aws:ecs:us-east-1:<account>:service/<cluster>/<service>": after a rotation of one of
  # the keys the state machine redeploys them (UpdateService, forceNewDeployment). Here, not a
  # -var: the deploy workflow plans this file as committed. Adding one is an administrator's
  # apply (a rotor:* tag and the boundary change). Empty: nothing is redeployed.
  backend_services = []
}

module "rotor" {
  source = "../../modules/rotor"

  environment            = "development"
  regions                = [var.region]
  lambda_zip_dir         = coalesce(var.lambda_zip_dir, "${path.root}/../../../target/lambda-zips")
  lambda_architecture    = var.lambda_architecture
  github_repository      = var.github_repository
  github_environment     = "development"
  terraform_state_bucket = var.terraform_state_bucket
  terraform_state_key    = var.terraform_state_key
  log_level              = "rotor=debug,info"

  # Development: short waits, deletions that can be undone for a week.
  kms_deletion_window_days    = 7
  secret_recovery_window_days = 7

  secrets = {
    # The seven vendor keys the backend reads (names as the rotate and rollback workflows
    # offer them); each redeploys the backend's ECS services (local.backend_services) when rotated.
    openai = {
      name                     = "development/openai_api_key"
      kind                     = "vendor-api-key"
      probe                    = "openai"
      wait_propagation_seconds = 5
      wait_consumers_seconds   = 30
      schedule                 = "rate(1 day)"
      max_age_days             = 30
      consumers                = local.backend_services
    }
    polygon = {
      name                     = "development/polygon_api_key"
      kind                     = "vendor-api-key"
      probe                    = "polygon"
      wait_propagation_seconds = 5
      wait_consumers_seconds   = 30
      schedule                 = "rate(1 day)"
      max_age_days             = 30
      consumers                = local.backend_services
    }
    finnhub = {
      name                     = "development/finnhub_api_key"
      kind                     = "vendor-api-key"
      probe                    = "finnhub"
      wait_propagation_seconds = 5
      wait_consumers_seconds   = 30
      schedule                 = "rate(1 day)"
      max_age_days             = 30
      consumers                = local.backend_services
    }
    "alpha-vantage" = {
      name                     = "development/alpha_vantage_api_key"
      kind                     = "vendor-api-key"
      probe                    = "alpha-vantage"
      wait_propagation_seconds = 5
      wait_consumers_seconds   = 30
      schedule                 = "rate(1 day)"
      max_age_days             = 30
      consumers                = local.backend_services
    }
    alchemy = {
      name                     = "development/alchemy_api_key"
      kind                     = "vendor-api-key"
      probe                    = "alchemy"
      wait_propagation_seconds = 5
      wait_consumers_seconds   = 30
      schedule                 = "rate(1 day)"
      max_age_days             = 30
      consumers                = local.backend_services
    }
    walletconnect = {
      name                     = "development/walletconnect_project_id"
      kind                     = "vendor-api-key"
      probe                    = "walletconnect"
      wait_propagation_seconds = 5
      wait_consumers_seconds   = 30
      schedule                 = "rate(1 day)"
      max_age_days             = 30
      consumers                = local.backend_services
    }
    newsapi = {
      name                     = "development/newsapi_api_key"
      kind                     = "vendor-api-key"
      probe                    = "newsapi"
      wait_propagation_seconds = 5
      wait_consumers_seconds   = 30
      schedule                 = "rate(1 day)"
      max_age_days             = 30
      consumers                = local.backend_services
    }
    session = {
      name                   = "development/session_signing_key"
      kind                   = "generated"
      length                 = 64
      charset                = "url-safe"
      wait_consumers_seconds = 30
      schedule               = "rate(7 days)"
    }
  }

  # The backend reads the seven vendor keys only, never the session signing key (output
  # application_policy_arns["backend"]: attach it to the backend's ECS task execution role;
  # examples/ecs).
  applications = {
    backend = { secrets = local.backend_secrets }
  }
}
