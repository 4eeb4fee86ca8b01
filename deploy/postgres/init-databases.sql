-- Run once by the postgres image on an empty data directory (mounted into /docker-entrypoint-initdb.d/).
-- Every service owns its own database; a site's PostgreSQL holds one for each service of that site.
CREATE DATABASE intake;
CREATE DATABASE sessions;
CREATE DATABASE billing;
CREATE DATABASE outcomes;
CREATE DATABASE webhooks;
