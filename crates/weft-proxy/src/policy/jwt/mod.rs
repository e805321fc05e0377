//! RequestAuthentication (JWT). Stub: the helper implementing it replaces this file.
