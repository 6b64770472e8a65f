"""Reading and writing images (one reader, explicit encoding) and their EXIF metadata."""
