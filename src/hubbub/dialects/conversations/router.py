"""Routes of the conversations dialect (placeholder until the dialect lands)."""

from fastapi import APIRouter

router = APIRouter()
