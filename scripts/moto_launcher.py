#!/usr/bin/env python3
"""Start moto's server with the Step Functions operations Terraform needs.

(And two fixes Terraform needs for multi-Region deployments: _patch_kms, _patch_secretsmanager.)

moto 5.2.5 does not implement ValidateStateMachineDefinition nor
ListStateMachineVersions, and the Terraform AWS provider calls both when it
creates or reads an `aws_sfn_state_machine`. moto dispatches an SFN request to
the method of `StepFunctionResponse` named after the X-Amz-Target operation in
snake_case (`BaseResponse.call_action`, which looks the name up with
`inspect.getmembers` on every request), so adding two methods to the class
before the server starts is enough. Results are serialised against botocore's
SFN output shapes, hence `ActionResult`.

Usage: moto_launcher.py PORT   (binds 127.0.0.1; sets MOTO_PORT=PORT, which
moto's Step Functions interpreter uses to call back into the server).
"""

import os
import sys


def _patch_stepfunctions() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def validate_state_machine_definition(self):  # noqa: ANN001, ANN202
        # No real validation: asl-validator and rotor-asl do that in the tests.
        return ActionResult({"result": "OK", "diagnostics": []})

    def list_state_machine_versions(self):  # noqa: ANN001, ANN202
        # moto does not model published versions; an empty list is what AWS
        # answers for a state machine that was never published.
        return ActionResult({"stateMachineVersions": []})

    for fn in (validate_state_machine_definition, list_state_machine_versions):
        if fn.__name__ not in StepFunctionResponse.__dict__:
            setattr(StepFunctionResponse, fn.__name__, fn)


def _patch_kms() -> None:
    """Give a multi-Region replica key its own MultiRegionConfiguration.

    moto 5.2.5's `KmsBackend.replicate_key` makes the replica a shallow copy of the primary, so
    both share one `multi_region_configuration` dict; `describe_key` on the replica then writes
    MultiRegionKeyType=REPLICA into it and the primary reads as a replica too (the Terraform
    provider refuses to refresh an `aws_kms_replica_key` whose primary "is not a multi-Region
    primary key"). AWS keeps one configuration per key: PRIMARY on the primary, REPLICA on each
    replica, the same PrimaryKey and ReplicaKeys lists.
    """
    from copy import deepcopy

    from moto.kms.models import KmsBackend

    if getattr(KmsBackend.replicate_key, "_rotor_patched", False):
        return
    original = KmsBackend.replicate_key

    def replicate_key(self, key_id, replica_region):  # noqa: ANN001, ANN202
        primary = self.keys[self.get_key_id(key_id)]
        replica = original(self, key_id, replica_region)
        if primary.multi_region:
            primary.multi_region_configuration["MultiRegionKeyType"] = "PRIMARY"
            replica.multi_region_configuration = deepcopy(primary.multi_region_configuration)
            replica.multi_region_configuration["MultiRegionKeyType"] = "REPLICA"
        return replica

    replicate_key._rotor_patched = True  # type: ignore[attr-defined]
    KmsBackend.replicate_key = replicate_key


def _patch_secretsmanager() -> None:
    """Keep the KMS key a secret's replica is encrypted with.

    moto 5.2.5 records every replica (CreateSecret AddReplicaRegions, ReplicateSecretToRegions)
    with KmsKeyId alias/aws/secretsmanager whatever the request said, so a Terraform
    `aws_secretsmanager_secret` whose `replica` names a customer managed key never converges
    (every plan wants to replace the replica). AWS answers the KmsKeyId that was asked for.
    """
    from moto.secretsmanager.models import FakeSecret

    if getattr(FakeSecret.create_replicas, "_rotor_patched", False):
        return
    original = FakeSecret.create_replicas

    def create_replicas(self, replica_regions, force_overwrite):  # noqa: ANN001, ANN202
        replicas = original(self, replica_regions, force_overwrite)
        for config, replica in zip(replica_regions or [], replicas):
            if config.get("KmsKeyId"):
                replica.config["KmsKeyId"] = config["KmsKeyId"]
        return replicas

    create_replicas._rotor_patched = True  # type: ignore[attr-defined]
    FakeSecret.create_replicas = create_replicas


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: moto_launcher.py PORT")
    port = sys.argv[1]
    # Must be set before moto reads it: the SFN interpreter's Lambda calls go
    # to http://localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = port

    _patch_stepfunctions()
    _patch_kms()
    _patch_secretsmanager()

    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main()
