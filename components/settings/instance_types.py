"""The EC2 instance types that exist: botocore's EC2 service model lists every one in the enum of its
`InstanceType` shape (botocore/data/ec2/<api version>/service-2.json), updated with each botocore
release as AWS announces types. botocore comes with boto3, a runtime dependency pinned in
requirements.lock, so the list moves only when the lock does.
"""

from __future__ import annotations

import difflib
import functools

from components.settings.config_reader import ConfigReader
from components.settings.validators import INSTANCE_TYPE_RE


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


def read_instance_type(reader: ConfigReader) -> str:
    """instanceType: a type EC2 has, x86_64 (Harbor's offline installer ships amd64 images), not tiny."""
    instance_type = reader.string("instanceType", required=True)
    match = INSTANCE_TYPE_RE.match(instance_type)
    problem = unknown_instance_type(instance_type) if instance_type else None
    if problem:
        reader.fail("instanceType", f"{instance_type!r} {problem}")
    elif match and ("g" in match.group(3) or match.group(1) in ("a", "im", "is")):
        reader.fail(
            "instanceType",
            f"{instance_type!r} is an Arm (Graviton) type; Harbor's offline installer ships amd64 images: "
            "use e.g. t3.large or m7i.large",
        )
    elif match and match.group(4) in ("nano", "micro", "small"):
        reader.fail(
            "instanceType",
            f"{instance_type!r} is too small for Harbor; accepted: at least 2 vCPU and 4 GiB (e.g. t3.medium, t3.large)",
        )
    return instance_type
