"""One Construct per component of the stack. Each takes typed inputs (the handles of the
components it needs) and exposes typed handles (`connections`, target groups, secrets, URLs) for
the others; stack.py only composes them."""
