"""Routes of the bots dialect (placeholder until the dialect lands)."""

from fastapi import APIRouter

router = APIRouter()
