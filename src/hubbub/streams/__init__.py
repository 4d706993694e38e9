"""Resumable event buffers for stored-chat generations (memory now; Redis when configured)."""
