"""Routes of the builder dialect (placeholder until the dialect lands)."""

from fastapi import APIRouter

router = APIRouter()
