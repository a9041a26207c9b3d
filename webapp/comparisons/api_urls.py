"""REST routes of webapp.comparisons, included under /api/ (names in the ``api`` namespace)."""
urlpatterns: list = []
