"""The EC2 instance types that exist: botocore's EC2 service model lists every one in the enum of its
`InstanceType` shape (botocore/data/ec2/<api version>/service-2.json), updated with each botocore
release as AWS announces types. botocore comes with boto3, a runtime dependency pinned in
requirements.lock, so the list moves only when the lock does.
"""

from __future__ import annotations

import difflib
import functools


@functools.cache
def ec2_instance_types() -> frozenset[str]:
    from botocore.loaders import create_loader

    model = create_loader().load_service_model("ec2", "service-2")
    return frozenset(model["shapes"]["InstanceType"]["enum"])


def unknown_instance_type(name: str) -> str | None:
    """None when EC2 has the type, else why not and the closest types."""
    if name in ec2_instance_types():
        return None
    import botocore

    close = difflib.get_close_matches(name, sorted(ec2_instance_types()), n=3, cutoff=0.75)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"is not an EC2 instance type{hint} (the types botocore {botocore.__version__} lists; a type AWS announced "
        "later needs a newer boto3 in requirements.txt and the lock)"
    )
