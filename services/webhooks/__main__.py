from services.webhooks.app import create_app
from shared.app import serve

serve("webhooks", create_app)
