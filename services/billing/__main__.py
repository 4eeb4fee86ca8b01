from services.billing.app import create_app
from shared.app import serve

serve("billing", create_app)
