#!/usr/bin/env python3
"""Start moto's server with the Step Functions operations Terraform needs.

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


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: moto_launcher.py PORT")
    port = sys.argv[1]
    # Must be set before moto reads it: the SFN interpreter's Lambda calls go
    # to http://localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = port

    _patch_stepfunctions()

    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main()
