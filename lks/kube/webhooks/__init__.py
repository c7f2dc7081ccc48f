"""Admission webhooks (upstream's `apiserver/pkg/admission/plugin/webhook`): the configurations
compiled into matchers (`hooks`), the AdmissionReview sent and the answer read (`review`), and
the HTTPS client that calls them without holding up the event loop (`client`). The admission
plugin that dispatches them is `lks.kube.admission.webhooks`.
"""
