"""A/B routes: weighted, sticky arms over adapter versions, their reports and the guarded
promote rule."""
