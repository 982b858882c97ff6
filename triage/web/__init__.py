"""Server-rendered pages: staff/ (signed-in work) and, later, the public forms."""
