"""The core: types, events and the ChatService every dialect calls."""
