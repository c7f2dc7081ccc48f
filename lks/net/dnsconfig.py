"""A pod's `/etc/resolv.conf` and `/etc/hosts` as kubelet writes them (`pkg/kubelet/network/dns`
and `kubelet_pods.go`): ClusterFirst gives the cluster's DNS service IP and the search path
`<ns>.svc.<domain> svc.<domain> <domain>` with `ndots:5`, then the host's own search domains;
Default gives the host's resolv.conf; None only `dnsConfig`, which every policy merges in
(nameservers and searches appended, options by name). `hostNetwork` pods with ClusterFirst get
Default, as kubelet does (ClusterFirstWithHostNet is the exception). The hosts file is kubelet's
managed one: localhost lines, the pod's IP with its hostname (and FQDN with a subdomain), then
`hostAliases`. The process runtime (`lks.nodes.launch`) bind-mounts both into the pod's
containers.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

CLUSTER_DOMAIN = "cluster.local"
HOST_RESOLV = "/etc/resolv.conf"
MAX_SEARCHES = 32  # kubelet's validation limit (MaxDNSSearchPaths)


def _host_resolv(path: str = HOST_RESOLV) -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        text = open(path).read()
    except OSError:
        return servers, searches, options
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields[0] == "options":
            options += fields[1:]
    return servers, searches, options


def resolv_conf(pod: Obj, *, dns_service_ip: str, domain: str = CLUSTER_DOMAIN, host_path: str = HOST_RESOLV) -> str:
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    host_servers, host_searches, host_options = _host_resolv(host_path)
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        ns = pod["metadata"].get("namespace") or "default"
        servers = [dns_service_ip]
        searches = [f"{ns}.svc.{domain}", f"svc.{domain}", domain, *host_searches]
        options = ["ndots:5"]
    elif policy == "None":
        servers, searches, options = [], [], []
    else:  # Default: the node's
        servers, searches, options = host_servers, host_searches, host_options
    config = spec.get("dnsConfig") or {}
    servers += [s for s in config.get("nameservers") or () if s not in servers]
    searches += [s for s in config.get("searches") or () if s not in searches]
    for opt in config.get("options") or ():
        name = opt.get("name")
        if not name:
            continue
        options = [o for o in options if o.split(":", 1)[0] != name]
        options.append(f"{name}:{opt['value']}" if opt.get("value") is not None else name)
    lines = [f"search {' '.join(searches[:MAX_SEARCHES])}"] if searches else []
    lines += [f"nameserver {s}" for s in servers[:3]]  # the resolver reads three
    if options:
        lines.append(f"options {' '.join(options)}")
    return "\n".join(lines) + "\n"


def hosts(pod: Obj, *, pod_ip: str, domain: str = CLUSTER_DOMAIN) -> str:
    spec = pod.get("spec") or {}
    meta = pod["metadata"]
    hostname = spec.get("hostname") or meta["name"]
    out = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
           "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if pod_ip:
        subdomain = spec.get("subdomain")
        if subdomain:
            out.append(f"{pod_ip}\t{hostname}.{subdomain}.{meta.get('namespace') or 'default'}.svc.{domain}\t{hostname}")
        else:
            out.append(f"{pod_ip}\t{hostname}")
    aliases = spec.get("hostAliases") or []
    if aliases:
        out.append("")
        out.append("# Entries added by HostAliases.")
        out += [f"{a['ip']}\t{chr(9).join(a.get('hostnames') or [])}" for a in aliases if a.get("ip")]
    return "\n".join(out) + "\n"
