"""REST routes of webapp.evaluations, included under /api/ (names in the ``api`` namespace)."""
urlpatterns: list = []
