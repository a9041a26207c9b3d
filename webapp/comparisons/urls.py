"""Page routes of webapp.comparisons (namespace ``comparisons``)."""
app_name = "comparisons"

urlpatterns: list = []
