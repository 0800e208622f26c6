-- Custom SQL migration file, put your code below! --
-- Search (issue 18): filled in by the search work.
SELECT 1;
