# rotor, production: primary region plus a replica region (KMS replica key, secret replicas).
#   scripts/package
#   terraform -chdir=infrastructure/environments/production init -backend-config=backend.hcl
#   terraform -chdir=infrastructure/environments/production apply -var github_repository=owner/name
# backend.hcl (not committed) names the state bucket: bucket, key (rotor/production.tfstate, as
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

  backend "s3" {}
}

provider "aws" {
  region = var.region
}

# One provider per extra region: the KMS replica key is created there.
provider "aws" {
  alias  = "replica"
  region = var.replica_region
}

module "kms_replica" {
  source = "../../modules/rotor/modules/kms-replica"
  providers = {
    aws = aws.replica
  }

  primary_key_arn = module.rotor.kms_key_arn
  description     = module.rotor.kms_key_description
  tags            = { application = "rotor", environment = "production" }
}

locals {
  # What the backend application reads (keys of the module's secrets below).
  backend_secrets = ["openai", "polygon", "finnhub", "alpha-vantage", "alchemy", "walletconnect", "newsapi"]
  # The backend's ECS services in production whose tasks read those keys (secrets[].valueFrom), as
  # long-format service ARNs in the primary region, e.g.
  # "arn:aws:ecs:us-east-1:<account>:service/<cluster>/<service>": after a rotation of one of
  # the keys the state machine redeploys them (UpdateService, forceNewDeployment). Here, not a
  # -var: the deploy workflow plans this file as committed. Adding one is an administrator's
  # apply (a rotor:* tag and the boundary change). Empty: nothing is redeployed.
  backend_services = []
}

module "rotor" {
  source = "../../modules/rotor"

  environment            = "production"
  regions                = [var.region, var.replica_region]
  replica_kms_key_arns   = { (var.replica_region) = module.kms_replica.arn }
  lambda_zip_dir         = coalesce(var.lambda_zip_dir, "${path.root}/../../../target/lambda-zips")
  lambda_architecture    = var.lambda_architecture
  github_repository      = var.github_repository
  github_environment     = "production"
  terraform_state_bucket = var.terraform_state_bucket
  terraform_state_key    = var.terraform_state_key
  alarm_email_addresses  = var.alarm_email_addresses

  secrets = {
    # The seven vendor keys the backend reads (names as the rotate and rollback workflows
    # offer them); each redeploys the backend's ECS services (local.backend_services) when rotated.
    openai = {
      name           = "production/openai_api_key"
      kind           = "vendor-api-key"
      probe          = "openai"
      app_health_url = "https://app.example.com/healthz"
      schedule       = "cron(0 9 ? * MON *)"
      max_age_days   = 90
      consumers      = local.backend_services
    }
    polygon = {
      name           = "production/polygon_api_key"
      kind           = "vendor-api-key"
      probe          = "polygon"
      app_health_url = "https://app.example.com/healthz"
      schedule       = "cron(0 9 ? * MON *)"
      max_age_days   = 90
      consumers      = local.backend_services
    }
    finnhub = {
      name           = "production/finnhub_api_key"
      kind           = "vendor-api-key"
      probe          = "finnhub"
      app_health_url = "https://app.example.com/healthz"
      schedule       = "cron(0 9 ? * MON *)"
      max_age_days   = 90
      consumers      = local.backend_services
    }
    "alpha-vantage" = {
      name           = "production/alpha_vantage_api_key"
      kind           = "vendor-api-key"
      probe          = "alpha-vantage"
      app_health_url = "https://app.example.com/healthz"
      schedule       = "cron(0 9 ? * MON *)"
      max_age_days   = 90
      consumers      = local.backend_services
    }
    alchemy = {
      name           = "production/alchemy_api_key"
      kind           = "vendor-api-key"
      probe          = "alchemy"
      app_health_url = "https://app.example.com/healthz"
      schedule       = "cron(0 9 ? * MON *)"
      max_age_days   = 90
      consumers      = local.backend_services
    }
    walletconnect = {
      name           = "production/walletconnect_project_id"
      kind           = "vendor-api-key"
      probe          = "walletconnect"
      app_health_url = "https://app.example.com/healthz"
      schedule       = "cron(0 9 ? * MON *)"
      max_age_days   = 90
      consumers      = local.backend_services
    }
    newsapi = {
      name           = "production/newsapi_api_key"
      kind           = "vendor-api-key"
      probe          = "newsapi"
      app_health_url = "https://app.example.com/healthz"
      schedule       = "cron(0 9 ? * MON *)"
      max_age_days   = 90
      consumers      = local.backend_services
    }
    session = {
      name                   = "production/session_signing_key"
      kind                   = "generated"
      length                 = 64
      charset                = "url-safe"
      wait_consumers_seconds = 300
      schedule               = "cron(0 4 1 * ? *)"
    }
    deployer = {
      name                   = "production/deployer_access_key"
      kind                   = "iam-access-key"
      iam_user               = "rotor-production-deployer"
      wait_consumers_seconds = 300
      grace_seconds          = 86400
      schedule               = "cron(0 5 1 */3 ? *)"
    }
  }

  # The backend reads the seven vendor keys only: never the session signing key, and never the
  # IAM deployer key (output application_policy_arns["backend"]: attach it to the backend's
  # ECS task execution role; examples/ecs).
  applications = {
    backend = { secrets = local.backend_secrets }
  }
}
