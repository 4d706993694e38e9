"""Routes of the bento dialect (placeholder until the dialect lands)."""

from fastapi import APIRouter

router = APIRouter()
