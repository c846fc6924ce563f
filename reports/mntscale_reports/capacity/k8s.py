"""capacity: the Kubernetes snippet (node labels and an extended-resource capacity patch),
printed and written, never applied."""

import json
import os
import re
from .model import LABEL_PREFIX, RESOURCE
from .reading import withheld


def label_value(text):
    """A valid label value: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric."""
    v = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", v) or "unknown"


def publishable(res):
    """Why N* must not be published, or None when it may."""
    if res.n_star is None:
        return "no density met the objectives (n_star is null)"
    if withheld(res):
        return "measured on a busy machine: " + withheld(res)
    if not res.complete:
        return "the search did not complete (complete=false, ended_by " + res.result["ended_by"] + ")"
    if res.n_lo is None:
        return "the 95% interval of N* reaches below the lowest density measured (n_lo is null)"
    return None


def k8s_snippet(res):
    """Shell text with kubectl commands for one result; never run here."""
    head = [f"# mntscale capacity of {res.machine} / kernel {res.kernel} / profile {res.profile} / "
            f"churn {res.strategy} (from {os.path.basename(res.path)})",
            "# NOT applied: review, then run it for each node of this machine type and kernel.",
            "# It holds for nodes like the measured one only; measure each machine type and kernel."]
    why = publishable(res)
    if why:
        return "\n".join(head + [f"# No capacity to publish: {why}.",
                                 "# Re-run `mntscale capacity` to completion; nothing to apply.", ""])
    # The conservative figure: the host sustains at least N_lo at 95%.
    n = res.n_lo
    ended = res.result["ended_by"]
    if res.cap.get("version", 1) >= 2:
        head.append(f"# N*={res.n_star}{res.interval_text()}: the labels and the resource use N_lo={n}.")
    if ended != "slo":
        head.append(f"# N*={n} is a floor: the search ended by {ended}, not by an objective failing.")
    labels = [f"{LABEL_PREFIX}/container-capacity={n}", f"{LABEL_PREFIX}/capacity-profile={label_value(res.profile)}",
              f"{LABEL_PREFIX}/capacity-kernel={label_value(res.kernel)}",
              f"{LABEL_PREFIX}/capacity-churn={label_value(res.strategy)}",
              f"{LABEL_PREFIX}/capacity-ended-by={label_value(ended)}"]
    patch = json.dumps({"status": {"capacity": {RESOURCE: str(n)}}}, separators=(",", ":"))
    return "\n".join(head + [
        'NODE="${NODE:?set NODE to the node name}"',
        "kubectl label node \"$NODE\" --overwrite \\\n  " + " \\\n  ".join(labels),
        f"# Extended resource: pods that request {RESOURCE}: 1 are scheduled at most N* per node.",
        f"kubectl patch node \"$NODE\" --subresource=status --type=merge -p '{patch}'", ""])
