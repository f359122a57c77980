"""Each endpoint's success path against the real movies_srv with real tokens."""

from __future__ import annotations

import urllib.parse

from tests.movies.conftest import ALICE, BOB, MOVIE


def create(api, token, **changes):
    response = api("POST", "/api/movies", token, {**MOVIE, **changes})
    assert response.status == 201, response.body
    return response.json()


def test_create_sets_owner_and_version(api, alice):
    response = api("POST", "/api/movies", alice, MOVIE)
    assert response.status == 201
    movie = response.json()
    assert movie == {**MOVIE, "id": movie["id"], "owner": ALICE, "ownerName": "Alice Smith", "version": 1}
    assert response.headers["ETag"] == '"1"'


def test_create_location_resolves_to_movie(api, alice, movies_service):
    created = api("POST", "/api/movies", alice, MOVIE)
    movie = created.json()
    assert created.headers["Location"] == f"movies/{movie['id']}"

    # A client resolves the reference against the URL it posted to (RFC 3986 §5.2).
    location = urllib.parse.urljoin(f"{movies_service.url}/api/movies", created.headers["Location"])
    assert location == f"{movies_service.url}/api/movies/{movie['id']}"
    shown = api("GET", urllib.parse.urlsplit(location).path, alice)
    assert shown.status == 200
    assert shown.json() == movie


def test_create_with_null_image(api, alice):
    movie = create(api, alice, imageUrl=None)
    assert movie["imageUrl"] is None


def test_get_one(api, alice, machine):
    movie = create(api, alice)
    response = api("GET", f"/api/movies/{movie['id']}", machine)
    assert response.status == 200
    assert response.json() == movie
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_get_one_not_modified(api, alice):
    movie = create(api, alice)
    response = api("GET", f"/api/movies/{movie['id']}", alice, headers={"If-None-Match": '"1"'})
    assert response.status == 304
    assert response.body == b""
    assert response.headers["ETag"] == '"1"'
    assert api("GET", f"/api/movies/{movie['id']}", alice, headers={"If-None-Match": '"7"'}).status == 200


def test_replace(api, alice):
    movie = create(api, alice)
    replacement = {"title": "The Matrix Reloaded", "genre": "Action", "rating": 7.2, "releaseDate": "2003-05-15"}
    response = api("PUT", f"/api/movies/{movie['id']}", alice, replacement, headers={"If-Match": '"1"'})
    assert response.status == 200
    assert response.json() == {**replacement, "imageUrl": None, "id": movie["id"], "owner": ALICE,
                               "ownerName": "Alice Smith", "version": 2}
    assert response.headers["ETag"] == '"2"'


def test_replace_may_repeat_server_fields(api, alice):
    movie = create(api, alice)
    response = api("PUT", f"/api/movies/{movie['id']}", alice, {**movie, "rating": 9.0})
    assert response.status == 200
    assert response.json()["rating"] == 9.0


def test_patch(api, alice):
    movie = create(api, alice)
    response = api("PATCH", f"/api/movies/{movie['id']}", alice, {"rating": 9.1, "imageUrl": None},
                   headers={"Content-Type": "application/merge-patch+json", "If-Match": '"1"'})
    assert response.status == 200
    assert response.json() == {**movie, "rating": 9.1, "imageUrl": None, "version": 2}


def test_patch_empty_object_changes_nothing(api, alice, movies_db):
    movie = create(api, alice)
    path = f"/api/movies/{movie['id']}"
    for body in [{}, {"id": movie["id"], "owner": ALICE, "ownerName": "Alice Smith", "version": 1}]:
        response = api("PATCH", path, alice, body, headers={"If-Match": '"1"'})
        assert response.status == 200, body
        assert response.json() == movie, body
        assert response.headers["ETag"] == '"1"', body
    assert movies_db["movies"].find_one({})["version"] == 1
    assert api("GET", path, alice).headers["ETag"] == '"1"'


def test_patch_empty_object_checks_if_match(api, alice):
    movie = create(api, alice)
    response = api("PATCH", f"/api/movies/{movie['id']}", alice, {}, headers={"If-Match": '"7"'})
    assert response.status == 412
    assert response.headers["ETag"] == '"1"'


def test_delete(api, alice):
    movie = create(api, alice)
    response = api("DELETE", f"/api/movies/{movie['id']}", alice, headers={"If-Match": '"1"'})
    assert response.status == 204
    assert response.body == b""
    assert api("GET", f"/api/movies/{movie['id']}", alice).status == 404


def test_unknown_and_malformed_ids_are_404(api, alice):
    for movie_id in ["0123456789abcdef01234567", "not-an-id", "1"]:
        for method in ["GET", "PUT", "PATCH", "DELETE"]:
            body = MOVIE if method in ("PUT", "PATCH") else None
            response = api(method, f"/api/movies/{movie_id}", alice, body)
            assert response.status == 404, (method, movie_id)
            assert response.json() == {"error": "not_found", "error_description": "no movie has this id"}


def test_stale_if_match_is_412(api, alice, bob):
    movie = create(api, alice)
    path = f"/api/movies/{movie['id']}"
    assert api("PATCH", path, alice, {"rating": 5.0}, headers={"If-Match": '"1"'}).status == 200

    # Bob read version 1 too; his write must not silently overwrite Alice's.
    for method, body in [("PUT", MOVIE), ("PATCH", {"rating": 1.0}), ("DELETE", None)]:
        response = api(method, path, bob, body, headers={"If-Match": '"1"'})
        assert response.status == 412
        assert response.json() == {
            "error": "precondition_failed",
            "error_description": "the movie was changed since you read it: fetch it again and reapply your change",
        }
        assert response.headers["ETag"] == '"2"'
    assert api("GET", path, alice).json()["rating"] == 5.0


def test_weak_if_match_never_matches(api, alice):
    movie = create(api, alice)
    response = api("PATCH", f"/api/movies/{movie['id']}", alice, {"rating": 1.0}, headers={"If-Match": 'W/"1"'})
    assert response.status == 412


def test_if_match_star_and_lists(api, alice):
    movie = create(api, alice)
    path = f"/api/movies/{movie['id']}"
    assert api("PATCH", path, alice, {"rating": 1.0}, headers={"If-Match": "*"}).status == 200
    response = api("PATCH", path, alice, {"rating": 2.0}, headers={"If-Match": '"1", "2"'})
    assert response.status == 200
    assert response.json()["version"] == 3


def test_identity_returns_claims(api, issuer):
    claims = issuer.user_claims(BOB, roles=["admin"], name="Bob Smith")
    response = api("GET", "/api/identity", issuer.sign(claims))
    assert response.status == 200
    assert response.json() == claims
    assert response.headers["Cache-Control"] == "no-store"


def seed_titles(api, token, titles):
    return [create(api, token, title=title, rating=float(index % 10), genre="Drama" if index % 2 else "Crime")
            for index, title in enumerate(titles)]


def test_list_default_sort_and_total(api, alice):
    seed_titles(api, alice, ["Casablanca", "Alien", "Brazil"])
    response = api("GET", "/api/movies", alice)
    assert response.status == 200
    assert [movie["title"] for movie in response.json()] == ["Alien", "Brazil", "Casablanca"]
    assert response.headers["X-Total-Count"] == "3"
    assert response.headers["Link"] is None


def test_list_cursor_walks_all_pages(api, alice):
    titles = [f"Film {index:02d}" for index in range(25)]
    seed_titles(api, alice, titles)
    seen = []
    query = "limit=10&sort=-title"
    pages = 0
    while query is not None:
        response = api("GET", f"/api/movies?{query}", alice)
        assert response.status == 200
        seen += [movie["title"] for movie in response.json()]
        pages += 1
        link = response.headers["Link"]
        query = link[2:link.index(">")] if link else None
    assert pages == 3
    assert seen == sorted(titles, reverse=True)


def test_list_cursor_with_equal_sort_values(api, alice):
    # Ratings repeat, so the cursor must break ties by id to skip and repeat nothing.
    movies = seed_titles(api, alice, [f"Film {index:02d}" for index in range(12)])
    response = api("GET", "/api/movies?sort=rating&limit=5", alice)
    first = response.json()
    link = response.headers["Link"]
    second = api("GET", f"/api/movies?{link[2:link.index('>')]}", alice).json()
    ids = [movie["id"] for movie in first + second]
    assert len(set(ids)) == 10
    ratings = [movie["rating"] for movie in first + second]
    assert ratings == sorted(movie["rating"] for movie in movies)[:10]


def test_list_page_numbers(api, alice):
    seed_titles(api, alice, [f"Film {index:02d}" for index in range(7)])
    response = api("GET", "/api/movies?limit=3&page=2", alice)
    assert [movie["title"] for movie in response.json()] == ["Film 03", "Film 04", "Film 05"]
    assert response.headers["Link"] == '<?limit=3&page=3>; rel="next"'
    last = api("GET", "/api/movies?limit=3&page=3", alice)
    assert [movie["title"] for movie in last.json()] == ["Film 06"]
    assert last.headers["Link"] is None


def test_list_filters(api, alice, bob):
    create(api, alice, title="The Dark Knight", genre="Action")
    create(api, alice, title="Knight and Day", genre="Comedy")
    create(api, bob, title="Dark City", genre="Action")
    by_title = api("GET", "/api/movies?" + urllib.parse.urlencode({"title": "KNIGHT"}), alice).json()
    assert [movie["title"] for movie in by_title] == ["Knight and Day", "The Dark Knight"]
    by_genre = api("GET", "/api/movies?genre=Action", alice).json()
    assert [movie["title"] for movie in by_genre] == ["Dark City", "The Dark Knight"]
    by_owner = api("GET", f"/api/movies?owner={BOB}", alice).json()
    assert [movie["title"] for movie in by_owner] == ["Dark City"]
    combined = api("GET", f"/api/movies?genre=Action&owner={ALICE}&title=dark", alice)
    assert [movie["title"] for movie in combined.json()] == ["The Dark Knight"]
    assert combined.headers["X-Total-Count"] == "1"


def test_title_filter_is_not_a_regex(api, alice):
    create(api, alice, title="Se7en")
    create(api, alice, title="S.O.B.")
    assert api("GET", "/api/movies?title=.*", alice).json() == []
    assert [movie["title"] for movie in api("GET", "/api/movies?title=S.O", alice).json()] == ["S.O.B."]


def test_list_sorted_by_release_descending(api, alice):
    create(api, alice, title="Old", releaseDate="1950-01-01")
    create(api, alice, title="New", releaseDate="2020-01-01")
    create(api, alice, title="Middle", releaseDate="1990-01-01")
    titles = [movie["title"] for movie in api("GET", "/api/movies?sort=-releaseDate", alice).json()]
    assert titles == ["New", "Middle", "Old"]
