"""Page routes of webapp.evaluations (namespace ``evaluations``)."""
app_name = "evaluations"

urlpatterns: list = []
