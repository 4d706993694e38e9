"""POST /api/chat is shared by builder (body has ``messages``) and conversations (``message``).
(placeholder until the dialects land)"""

from fastapi import APIRouter

router = APIRouter()
