-- Run once by the network's postgres image on an empty data directory (outcomes is its POSTGRES_DB).
CREATE DATABASE webhooks;
