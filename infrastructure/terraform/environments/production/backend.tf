# Remote state in S3, locked with a lock file beside it (Terraform >= 1.10). The bucket is created
# once per account by hand (versioned, encrypted, private) before the first `terraform init`.
terraform {
  backend "s3" {
    bucket       = "triggers-terraform-state-example"
    key          = "triggers-api/production/terraform.tfstate"
    region       = "us-east-1"
    encrypt      = true
    use_lockfile = true
  }
}
