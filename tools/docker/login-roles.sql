-- Login users for the services, each in its least-privileged group (created by migration
-- 0001). Run by docker-compose after `auditctl migrate`; passwords come from psql variables.
SELECT format('CREATE ROLE ingestor LOGIN IN ROLE audit_writer')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ingestor') \gexec
SELECT format('CREATE ROLE query LOGIN IN ROLE audit_reader')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'query') \gexec
ALTER ROLE ingestor PASSWORD :'ingestor_password';
ALTER ROLE query PASSWORD :'query_password';
