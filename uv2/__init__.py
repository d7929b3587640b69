"""uv2: UniFormerV2 research codebase."""
