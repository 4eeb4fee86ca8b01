from services.outcomes.app import create_app
from shared.app import serve

serve("outcomes", create_app)
