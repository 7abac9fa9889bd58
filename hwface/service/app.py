"""The HTTP lookup service: JSON over HTTP on one :class:`~hwface.nas.lookup.LatencyModel` (FastAPI).

Endpoints (OpenAPI docs at ``/docs``):

- ``GET /v1/health``: the model and data that answer (target, regime, fingerprint, rows);
- ``POST /v1/latency/network``: one network (``spec``, ``model`` or ``ofa``) or a
  batch (``networks``), each answer with its total, interval and, unless
  ``breakdown`` is false, per kernel measured or predicted;
- ``POST /v1/latency/layers``: a batch of layer keys.

Bad requests get a 4xx whose ``error`` names the field (422 for an invalid
field, 400 for malformed JSON, 404 for an unknown zoo name, 413 for a body over
:data:`MAX_BODY_BYTES` or a batch over its limit); an unexpected failure is a
500 with one line, never a traceback.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hwface.errors import HwfaceError

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_NETWORKS = 256
MAX_KEYS = 100_000


class NetworkQuery(BaseModel):
    """One network: exactly one of ``spec`` (an arch spec, docs/nas.md), ``model`` (zoo name), ``ofa`` (OFA arch)."""

    spec: dict[str, Any] | None = None
    model: str | None = None
    ofa: dict[str, Any] | None = None


class NetworkRequest(NetworkQuery):
    """One network, or a batch in ``networks``; ``breakdown`` false leaves out the per-kernel list."""

    networks: list[NetworkQuery] | None = None
    breakdown: bool = True


class KernelAnswer(BaseModel):
    key: str
    op: str
    calls: int
    latency_us: float
    low_us: float
    high_us: float
    source: str = Field(description="measured or predicted")


class NetworkAnswer(BaseModel):
    """A network's latency in microseconds: total, p10-p90 interval, kernels + overhead."""

    total_us: float
    low_us: float
    high_us: float
    kernel_sum_us: float
    overhead_us: float
    kernel_calls: int
    measured_kernels: int
    predicted_kernels: int
    kernels: list[KernelAnswer] | None = None


class BatchAnswer(BaseModel):
    networks: list[NetworkAnswer]


class LayersRequest(BaseModel):
    keys: list[str] = Field(description="layer key strings (LayerKey.to_str)")


class LayerAnswer(BaseModel):
    key: str
    latency_us: float
    low_us: float
    high_us: float
    source: str


class LayersAnswer(BaseModel):
    layers: list[LayerAnswer]


class ServiceError(Exception):
    """A request the service refuses: HTTP status and one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class RefuseLargeOrNonJsonBodies:
    """ASGI middleware: 413 for a declared body over :data:`MAX_BODY_BYTES`, 415 for a POST that is not JSON.

    A plain ASGI class, not Starlette's ``BaseHTTPMiddleware``, which cost the
    service a fifth of its time per query.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            size = headers.get(b"content-length", b"")
            refusal = None
            if size.isdigit() and int(size) > MAX_BODY_BYTES:
                refusal = JSONResponse({"error": f"body of {int(size)} bytes is over the limit of {MAX_BODY_BYTES}"},
                                       status_code=413)
            elif scope["method"] == "POST" and b"json" not in headers.get(b"content-type", b""):
                refusal = JSONResponse({"error": "send the body as JSON with Content-Type: application/json"},
                                       status_code=415)
            if refusal is not None:
                return await refusal(scope, receive, send)
        await self.app(scope, receive, send)


def _one_network(model, q: NetworkQuery, where: str):
    given = [name for name in ("spec", "model", "ofa") if getattr(q, name) is not None]
    if len(given) != 1:
        raise ServiceError(422, f"{where}: give exactly one of spec, model, ofa (got {', '.join(given) or 'none'})")
    if q.ofa is not None:
        from hwface.nas.ofa import ofa_to_spec

        return model.network(_spec_or_422(lambda: ofa_to_spec(q.ofa), f"{where}.ofa"))
    if q.spec is not None:
        from hwface.nas.spec import ArchSpec

        return model.network(_spec_or_422(lambda: ArchSpec.from_dict(q.spec), f"{where}.spec"))
    from hwface.models import UnknownModelError

    try:
        return model.network(q.model)
    except UnknownModelError as exc:
        raise ServiceError(404, f"{where}.model: {exc}") from None


def _spec_or_422(make, where: str):
    from hwface.nas.spec import ArchSpecError

    try:
        return make()
    except ArchSpecError as exc:
        raise ServiceError(422, f"{where}: {exc}") from None


def create_app(model) -> FastAPI:
    """The FastAPI app answering from ``model`` (a :class:`~hwface.nas.lookup.LatencyModel`)."""
    from hwface import __version__

    app = FastAPI(title="hwface latency lookup", version=__version__,
                  description="Measured-first kernel and network latency for NAS (see docs/nas.md).")
    info = model.info()

    app.add_middleware(RefuseLargeOrNonJsonBodies)

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            at = first.get("loc", ("body", "?"))[-1]
            return JSONResponse({"error": f"body: malformed JSON at character {at}"}, status_code=400)
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    @app.exception_handler(HwfaceError)
    async def hwface_error(_: Request, exc: HwfaceError):
        return JSONResponse({"error": str(exc).splitlines()[0]}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception):
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/v1/health")
    async def health() -> dict:
        return {"status": "ok", **info.__dict__}

    # The answers are built from hwface's own dataclasses and returned as JSON
    # directly: FastAPI documents them by the response models but does not
    # validate them a second time.
    @app.post("/v1/latency/network", response_model=NetworkAnswer | BatchAnswer)
    async def network(req: NetworkRequest):
        if req.networks is None:
            return JSONResponse(_one_network(model, req, "body").to_dict(req.breakdown))
        if any(getattr(req, name) is not None for name in ("spec", "model", "ofa")):
            raise ServiceError(422, "body: give networks or one of spec, model, ofa, not both")
        if len(req.networks) > MAX_NETWORKS:
            raise ServiceError(413, f"networks: {len(req.networks)} in one batch, the limit is {MAX_NETWORKS}")
        return JSONResponse({"networks": [_one_network(model, q, f"networks.{i}").to_dict(req.breakdown)
                                          for i, q in enumerate(req.networks)]})

    @app.post("/v1/latency/layers", response_model=LayersAnswer)
    async def layers(req: LayersRequest):
        from hwface.latency.key import LayerKeyError

        if len(req.keys) > MAX_KEYS:
            raise ServiceError(413, f"keys: {len(req.keys)} in one batch, the limit is {MAX_KEYS}")
        try:
            return JSONResponse({"layers": model.layers(req.keys).to_records()})
        except LayerKeyError as exc:
            raise ServiceError(422, f"keys: {exc}") from None

    return app
