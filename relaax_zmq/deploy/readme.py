"""The README written next to the manifests: how to build and apply them, and the
prometheus-adapter rule the workers' HorizontalPodAutoscaler needs (docs/kubernetes.md
holds the same rule; a test keeps the two equal)."""

from __future__ import annotations

from relaax_zmq.deploy.kubernetes import LOAD_METRIC

#: prometheus-adapter's rule serving ``LOAD_METRIC`` on the External metrics API: the broker's
#: sessions over its live workers' capacity, any refused session counting as a full load
#: (``A > B or B`` is PromQL's larger of two single values).
ADAPTER_RULE = f"""\
externalRules:
  - seriesQuery: 'relaax_broker_sessions{{role="broker"}}'
    resources: {{namespaced: false}}
    name: {{matches: "^relaax_broker_sessions$", as: "{LOAD_METRIC}"}}
    metricsQuery: |
      (sum(relaax_broker_sessions) / clamp_min(sum(relaax_broker_capacity_sessions), 1))
        > clamp_max(sum(rate(relaax_broker_refused_inits_total[1m])) * 1000, 1)
      or clamp_max(sum(rate(relaax_broker_refused_inits_total[1m])) * 1000, 1)
"""


def readme(*, app_name: str, image: str, namespace: str, curve: bool) -> str:
    """The README's text (Markdown) for the app ``app_name`` deployed as ``image``."""
    secret = (
        "\n`k8s/` holds the CURVE key pairs as a Secret (and the image may hold files the app "
        "reads, such as S3 keys): keep both private.\n"
        if curve
        else ""
    )
    return f"""# {app_name} on Kubernetes

Made by `relaax-zmq deploy k8s` from the app file; docs/kubernetes.md of relaax-zmq has the
details. `Dockerfile` builds the image from this folder (`src/`: relaax-zmq's source, `app/`:
the app folder); `k8s/` holds one object per file, the cluster's app file in the ConfigMap.

```bash
docker build -t {image} . && docker push {image}
kubectl create namespace {namespace}  # unless it exists
kubectl apply -f k8s/
```
{secret}
## The workers' autoscaler

The HorizontalPodAutoscaler `relaax-worker` follows the External metric `{LOAD_METRIC}`. It
needs Prometheus scraping the pods (their `prometheus.io/*` annotations) and
[prometheus-adapter](https://github.com/kubernetes-sigs/prometheus-adapter) serving the External
metrics API with this rule (one relaax app per Prometheus: the query sums every broker it sees):

```yaml
{ADAPTER_RULE}```

Without it the autoscaler reports the metric missing and keeps the worker pods as they are.
"""
