"""Liveness for load balancers and scripts; says nothing about the data."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness probe (no authentication)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
