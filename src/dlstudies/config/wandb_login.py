"""Whether this machine logs to W&B online: the logger config's ``offline`` (``${dls.wandb_offline:}``)
and loggers.py read it."""

import netrc
import os
from urllib.parse import urlsplit

# W&B's cloud API and the CoreWeave host that serves it since wandb 0.31: `wandb login` writes one
# of them to netrc. WANDB_BASE_URL names a server of your own instead.
CLOUD_HOSTS = ("api.wandb.ai", "api.forge.coreweave.com")


def wandb_server() -> str:
    """The W&B server this process would log to."""
    return os.environ.get("WANDB_BASE_URL", f"https://{CLOUD_HOSTS[0]}")


def wandb_offline() -> bool:
    """Offline unless the user is logged in (API key, or a netrc entry for the W&B server);
    WANDB_MODE wins if set."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return False
    hosts = [urlsplit(wandb_server()).netloc] if "WANDB_BASE_URL" in os.environ else CLOUD_HOSTS
    try:
        known = netrc.netrc(os.environ.get("NETRC")).hosts  # W&B reads the file NETRC names too
    except (FileNotFoundError, netrc.NetrcParseError):
        return True
    return not any(host in known for host in hosts)
